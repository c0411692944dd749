// The text corpus: reading files and folders into one byte sequence, the
// held-out tail, and the windows the GPT trains on (see text.hpp).
#include "gossip/data/text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "gossip/data/idx.hpp"

namespace gossip::data {

namespace fs = std::filesystem;

namespace {

core::Status append_file(const std::string& path, std::vector<uint8_t>& out) {
  auto bytes = read_file_maybe_gzip(path);
  if (!bytes) return bytes.status();
  if (bytes->empty()) return core::invalid_argument(path + ": empty file");
  out.insert(out.end(), bytes->begin(), bytes->end());
  return core::Status::ok();
}

}  // namespace

core::Result<std::vector<uint8_t>> read_text_corpus(const std::vector<std::string>& paths) {
  if (paths.empty()) return core::invalid_argument("text: no path given");
  std::vector<uint8_t> out;
  for (const auto& path : paths) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (!fs::exists(status)) return core::not_found(path + ": no such file or folder");
    if (!fs::is_directory(status)) {
      GOSSIP_RETURN_IF_ERROR(append_file(path, out));
      continue;
    }
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      if (e.is_regular_file()) files.push_back(e.path().string());
    }
    if (ec) return core::io_error(path + ": cannot list the folder: " + ec.message());
    if (files.empty()) return core::invalid_argument(path + ": folder holds no files");
    std::sort(files.begin(), files.end());
    for (const auto& f : files) GOSSIP_RETURN_IF_ERROR(append_file(f, out));
  }
  return out;
}

core::Result<TextSplit> split_text(const std::string& name, const std::vector<uint8_t>& bytes,
                                   int window, double val_fraction) {
  if (!(val_fraction >= 0.0 && val_fraction < 1.0)) {
    return core::invalid_argument(name + ": val_fraction must be in [0, 1)");
  }
  const auto held =
      static_cast<size_t>(std::floor(static_cast<double>(bytes.size()) * val_fraction));
  const std::span<const uint8_t> all(bytes);
  auto train =
      Dataset::token_windows(name + " (training part)", all.first(bytes.size() - held), window);
  if (!train) return train.status();
  TextSplit split{std::move(train).value(), std::nullopt};
  if (held == 0) return split;
  char fraction[32];
  std::snprintf(fraction, sizeof fraction, "%g", val_fraction);
  auto val = Dataset::token_windows(name + " (held-out part, val_fraction " + fraction + ")",
                                    all.last(held), window);
  if (!val) return val.status();
  split.validation = std::move(val).value();
  return split;
}

}  // namespace gossip::data
