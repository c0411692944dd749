// The GPT family and the text dataset in the config: model.type "gpt" with
// its shape keys, data.dataset.type "text" with path (one or a list) and
// val_fraction, and every bad combination refused naming the key.
#include <doctest/doctest.h>

#include "config_test_support.hpp"

using namespace config_test;

namespace {

Json gpt() {
  return Json::parse(R"({
    "model": {"type": "gpt", "vocab": 256, "block": 64, "layers": 2, "heads": 4, "embd": 64,
              "seed": 7},
    "data": {"dataset": {"type": "text", "path": "corpus.txt"}}
  })");
}

}  // namespace

TEST_CASE("a gpt config: the model's keys, the text dataset, the window") {
  const auto c = parse_ok(gpt());
  CHECK(c.model.is_gpt());
  CHECK(c.model.gpt.block == 64);
  CHECK(c.model.gpt.layers == 2);
  CHECK(c.model.gpt.heads == 4);
  CHECK(c.model.gpt.embd == 64);
  CHECK(c.model.seed == 7);
  CHECK(c.model.describe() == "gpt vocab 256 block 64 layers 2 heads 4 embd 64");
  CHECK(c.data.dataset.type == "text");
  CHECK(c.data.dataset.text_paths == std::vector<std::string>{"/srv/cfg/corpus.txt"});
  CHECK(c.data.dataset.val_fraction == 0.1);
  CHECK(c.data.dataset.window == 65);  // block + 1
  // --print-config's JSON loads back to the same config.
  const auto again = parse_ok(gossip::config::to_json(c));
  CHECK(again.model.fingerprint() == c.model.fingerprint());
  CHECK(again.data.dataset.text_paths == c.data.dataset.text_paths);

  Json j = gpt();
  j["data"]["dataset"]["path"] = {"a.txt", "/abs/folder"};
  j["data"]["dataset"]["val_fraction"] = 0.0;
  const auto list = parse_ok(j);
  CHECK(list.data.dataset.text_paths == std::vector<std::string>{"/srv/cfg/a.txt", "/abs/folder"});
  CHECK(list.data.dataset.val_fraction == 0.0);
}

TEST_CASE("bad gpt and text configs are refused naming the key") {
  Json j = gpt();
  j["model"]["heads"] = 3;
  CHECK(error_of(j) == "model.embd: 64 is not divisible by model.heads 3");
  j = gpt();
  j["model"]["vocab"] = 300;
  CHECK(error_of(j) ==
        "model.vocab: a byte dataset (data.dataset.type text) has 256 values; got 300");
  j = gpt();
  j["model"]["layers"] = Json::array({784, 10});
  CHECK(error_of(j).find("model.layers: ") == 0);
  j = gpt();
  j["model"]["activation"] = "relu";
  CHECK(error_of(j).find("model.activation: not used by model type gpt") == 0);
  j = gpt();
  j["data"] = {{"dataset", {{"type", "fashion_mnist"}}}};
  CHECK(error_of(j) ==
        "model.type: gpt trains on bytes: needs data.dataset.type text, got "
        "fashion_mnist");
  j = base();
  j["data"] = gpt()["data"];
  CHECK(error_of(j).find("model.type: data.dataset.type text is byte-level language modelling") ==
        0);
  j = gpt();
  j["data"]["dataset"].erase("path");
  CHECK(error_of(j).find("data.dataset.path: required for dataset type text") == 0);
  j = gpt();
  j["data"]["dataset"]["path"] = Json::array();
  CHECK(error_of(j).find(
            "data.dataset.path: expected a file or folder name, or a non-empty list") == 0);
  j = gpt();
  j["data"]["dataset"]["val_fraction"] = 1.0;
  CHECK(error_of(j).find("data.dataset.val_fraction: ") == 0);
  j = gpt();
  j["model"]["type"] = "transformer";
  CHECK(error_of(j).find("model.type: ") == 0);
  j = base();
  j["data"]["dataset"]["path"] = "x.txt";
  CHECK(error_of(j).find("data.dataset.path: not used by dataset type fashion_mnist") == 0);
}
