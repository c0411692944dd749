// gossip-export: a checkpoint's model as a safetensors file. Thin main: parse
// the command line, read the checkpoint, rebuild its model from the header,
// name its tensors (train::export_tensors), write the file atomically.
// Exit status (cli::Program): 0 success, 2 bad usage, 1 a checkpoint or
// output that fails.
#include <cstdio>
#include <string>
#include <vector>

#include "gossip/cli/program.hpp"
#include "gossip/peer/checkpoint.hpp"
#include "gossip/train/export.hpp"

int main(int argc, char** argv) {
  using namespace gossip;
  cli::Program program(
      "gossip-export", {"gossip-export --checkpoint FILE --out FILE.safetensors"},
      "Writes the parameters of a checkpoint written by gossip-peer or gossip-sim as\n"
      "a safetensors file. A gpt's tensors carry nanoGPT's names and PyTorch\n"
      "nn.Linear's (out, in) shapes (transformer.wte.weight, transformer.h.0.attn.\n"
      "c_attn.weight, ...; the head is tied to transformer.wte.weight); an MLP's are\n"
      "layers.<i>.weight and layers.<i>.bias. __metadata__ holds the model's keys.");
  std::string checkpoint, out;
  auto& app = program.app();
  app.add_option("--checkpoint", checkpoint, "the checkpoint; required")->type_name("FILE");
  app.add_option("--out", out, "the safetensors file to write (replaced atomically); required")
      ->type_name("FILE");
  if (auto status = program.parse(argc, argv)) return *status;
  if (checkpoint.empty()) return program.usage_error("--checkpoint FILE is required");
  if (out.empty()) return program.usage_error("--out FILE is required");

  auto read = peer::read_checkpoint_with_model(checkpoint);
  if (!read) return program.fail(read.status().message());
  const train::ModelSpec& model = read->model;
  const std::vector<float>& params = read->state.params;
  auto tensors = train::export_tensors(model, params);
  if (!tensors) return program.fail(checkpoint + ": " + tensors.status().message());
  const auto bytes = train::encode_safetensors(*tensors);
  if (auto st = peer::write_file_atomically(out, bytes); !st) return program.fail(st.message());
  std::printf("%s: %s, %zu tensors, %zu parameters\n", out.c_str(), model.describe().c_str(),
              tensors->tensors.size(), params.size());
  return cli::kExitOk;
}
