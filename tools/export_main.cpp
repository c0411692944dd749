// gossip-export: a checkpoint's model as a safetensors file. Thin main: parse
// the command line, read the checkpoint, rebuild its model from the header,
// name its tensors (train::export_tensors), write the file atomically.
// Exit status: 0 success, 2 bad usage, 1 a checkpoint or output that fails.
#include <cstdio>
#include <string>
#include <vector>

#include "gossip/peer/checkpoint.hpp"
#include "gossip/train/export.hpp"

namespace {

constexpr const char* kUsage = R"(usage: gossip-export --checkpoint FILE --out FILE.safetensors

Writes the parameters of a checkpoint written by gossip-peer or gossip-sim as
a safetensors file. A gpt's tensors carry nanoGPT's names and PyTorch
nn.Linear's (out, in) shapes (transformer.wte.weight, transformer.h.0.attn.
c_attn.weight, ...; the head is tied to transformer.wte.weight); an MLP's are
layers.<i>.weight and layers.<i>.bias. __metadata__ holds the model's keys.

options:
  --checkpoint FILE  the checkpoint; required
  --out FILE         the safetensors file to write (replaced atomically); required
  -h, --help         this text
)";

int usage_error(const std::string& why) {
  std::fprintf(stderr, "gossip-export: %s (try --help)\n", why.c_str());
  return 2;
}

int fail(const std::string& why) {
  std::fprintf(stderr, "gossip-export: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace gossip;
  std::string checkpoint, out;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string& v) {
      if (i + 1 >= argc) return false;
      v = argv[++i];
      return true;
    };
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--checkpoint") {
      if (!value(checkpoint)) return usage_error("--checkpoint needs a file");
    } else if (arg == "--out") {
      if (!value(out) || out.empty()) return usage_error("--out needs a file");
    } else {
      return usage_error("unknown option '" + arg + "'");
    }
  }
  if (checkpoint.empty()) return usage_error("--checkpoint FILE is required");
  if (out.empty()) return usage_error("--out FILE is required");

  auto read = peer::read_checkpoint_with_model(checkpoint);
  if (!read) return fail(read.status().message());
  const train::ModelSpec& model = read->model;
  const std::vector<float>& params = read->state.params;
  auto tensors = train::export_tensors(model, params);
  if (!tensors) return fail(checkpoint + ": " + tensors.status().message());
  const auto bytes = train::encode_safetensors(*tensors);
  if (auto st = peer::write_file_atomically(out, bytes); !st) return fail(st.message());
  std::printf("%s: %s, %zu tensors, %zu parameters\n", out.c_str(), model.describe().c_str(),
              tensors->tensors.size(), params.size());
  return 0;
}
