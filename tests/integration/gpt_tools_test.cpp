// gossip-generate and gossip-export on checkpoints that gossip-peer wrote: the
// export's names, shapes, values and metadata; generation's determinism,
// greedy decoding and every bad argument.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gossip/peer/checkpoint.hpp"
#include "gossip/train/gpt.hpp"
#include "gossip/train/safetensors.hpp"
#include "peer_process.hpp"

using namespace gossip::test;

namespace {

// Runs build/tools/<tool> with `args`.
ProgramRun run_tool(const fs::path& dir, const std::string& tool, const std::string& args) {
  return run_program("tools/" + tool, args, dir, "tool");
}

// Trains `model` for 20 steps in <dir>/run and returns its final checkpoint.
fs::path train(const fs::path& dir, const Json& model, const Json& data) {
  const Json config = {{"peer", {{"network", false}, {"data_dir", (dir / "run").string()}}},
                       {"model", model},
                       {"optimizer", {{"type", "adamw"}, {"lr", 3e-3}}},
                       {"data", data},
                       {"training", {{"device", "cpu"}, {"steps", 20}}},
                       {"checkpoint", {{"every_steps", 0}}}};
  std::ofstream(dir / "config.json") << config.dump(2);
  Proc p = spawn(dir / "config.json", dir, "peer");
  Reaper reaper{{&p}};
  REQUIRE(wait_exit(p) == 0);
  p.pid = -1;
  return summary_of(p).at("checkpoint").get<std::string>();
}

const Json kGpt = {{"type", "gpt"}, {"block", 16}, {"layers", 2}, {"heads", 2}, {"embd", 16}};
const Json kText = {{"dataset", {{"type", "text"}, {"path", "/usr/share/games/fortunes/science"}}},
                    {"batch", 4}};

}  // namespace

TEST_CASE("gossip-export writes a gpt checkpoint as nanoGPT-named safetensors") {
  const fs::path dir = temp_dir("tools", "export");
  const fs::path ckpt = train(dir, kGpt, kText);
  const fs::path out = dir / "model.safetensors";
  const ProgramRun r =
      run_tool(dir, "gossip-export", "--checkpoint " + ckpt.string() + " --out " + out.string());
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("gpt vocab 256 block 16 layers 2 heads 2 embd 16, 28 tensors") !=
        std::string::npos);
  auto file = gossip::train::read_safetensors(out);
  REQUIRE(file.is_ok());
  CHECK(file->metadata.at("type") == "gpt");
  CHECK(file->metadata.at("block") == "16");
  CHECK(file->metadata.at("embd") == "16");
  auto state = gossip::peer::read_checkpoint_file(ckpt);
  REQUIRE(state.is_ok());
  gossip::train::GptSpec spec;
  spec.block = 16, spec.layers = 2, spec.heads = 2, spec.embd = 16;
  const auto table = spec.tensor_table();
  REQUIRE(file->tensors.size() == table.size());
  for (const auto& t : table) {
    const auto* e = file->find(t.name);
    REQUIRE_MESSAGE(e != nullptr, t.name);
    CHECK(e->shape == t.shape);
    const auto values = gossip::train::values_of(*e);
    CHECK(std::equal(values.begin(), values.end(), state->params.begin() + long(t.offset)));
  }
  CHECK(file->find("transformer.h.0.attn.c_attn.weight")->shape == std::vector<int64_t>{48, 16});
  // Bad arguments and inputs.
  CHECK(run_tool(dir, "gossip-export", "--checkpoint " + ckpt.string()).status == 2);
  const ProgramRun missing =
      run_tool(dir, "gossip-export", "--checkpoint /nope --out " + out.string());
  CHECK(missing.status == 1);
  CHECK(missing.err.find("/nope: no such file") != std::string::npos);
  const ProgramRun bad_out =
      run_tool(dir, "gossip-export",
               "--checkpoint " + ckpt.string() + " --out /nonexistent-dir/m.safetensors");
  CHECK(bad_out.status == 1);
  CHECK(bad_out.err.find("/nonexistent-dir/m.safetensors") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("gossip-export names an MLP's tensors layers.<i>.weight and .bias") {
  const fs::path dir = temp_dir("tools", "export-mlp");
  const fs::path ckpt =
      train(dir, {{"layers", {10, 20, 1}}, {"activation", "tanh"}, {"loss", "mse"}},
            {{"dataset", {{"type", "synthetic_regression"}}}});
  const fs::path out = dir / "mlp.safetensors";
  REQUIRE(run_tool(dir, "gossip-export", "--checkpoint " + ckpt.string() + " --out " + out.string())
              .status == 0);
  auto file = gossip::train::read_safetensors(out);
  REQUIRE(file.is_ok());
  CHECK(file->metadata.at("layers") == "10-20-1");
  CHECK(file->find("layers.0.weight")->shape == std::vector<int64_t>{20, 10});
  CHECK(file->find("layers.1.bias")->shape == std::vector<int64_t>{1});
  // A checkpoint from before model_spec was recorded: both tools say so.
  auto old = gossip::peer::read_checkpoint_file(ckpt);
  REQUIRE(old.is_ok());
  old->model_spec = nullptr;
  const auto bytes = gossip::peer::encode_checkpoint(*old);
  REQUIRE(gossip::peer::write_file_atomically(dir / "old.bin", bytes).is_ok());
  const ProgramRun old_export = run_tool(
      dir, "gossip-export",
      "--checkpoint " + (dir / "old.bin").string() + " --out " + (dir / "x.safetensors").string());
  CHECK(old_export.status == 1);
  CHECK(old_export.err.find("does not describe its model") != std::string::npos);
  const ProgramRun old_gen =
      run_tool(dir, "gossip-generate", "--checkpoint " + (dir / "old.bin").string());
  CHECK(old_gen.status == 1);
  CHECK(old_gen.err.find("does not describe its model") != std::string::npos);
  const ProgramRun gen = run_tool(dir, "gossip-generate", "--checkpoint " + ckpt.string());
  CHECK(gen.status == 1);
  CHECK(gen.err.find("only a gpt generates text") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("gossip-generate continues the prompt, deterministic for a seed") {
  const fs::path dir = temp_dir("tools", "generate");
  const std::string ckpt = "--checkpoint " + train(dir, kGpt, kText).string();
  const ProgramRun a =
      run_tool(dir, "gossip-generate", ckpt + " --prompt Hello --bytes 40 --seed 5");
  INFO(a.err);
  REQUIRE(a.status == 0);
  CHECK(a.out.rfind("Hello", 0) == 0);
  CHECK(a.out.size() == 5 + 40 + 1);  // prompt, bytes, newline
  CHECK(run_tool(dir, "gossip-generate", ckpt + " --prompt Hello --bytes 40 --seed 5").out ==
        a.out);
  CHECK(run_tool(dir, "gossip-generate", ckpt + " --prompt Hello --bytes 40 --seed 6").out !=
        a.out);
  // Greedy decoding does not depend on the seed.
  const std::string greedy = ckpt + " --prompt Hello --bytes 40 --top-k 1 --seed ";
  CHECK(run_tool(dir, "gossip-generate", greedy + "1").out ==
        run_tool(dir, "gossip-generate", greedy + "2").out);
  for (const std::string bad :
       {"--top-k 257", "--temperature 0", "--temperature x", "--bytes -1", "--frobnicate"}) {
    const ProgramRun r = run_tool(dir, "gossip-generate", ckpt + " " + bad);
    INFO(bad << ": " << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find("gossip-generate: ") == 0);
  }
  CHECK(run_tool(dir, "gossip-generate", "--bytes 5").status == 2);
  fs::remove_all(dir);
}
