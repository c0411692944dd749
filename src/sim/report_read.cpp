// Reading metrics.jsonl for the report: one JSON object per line with a
// string "type"; a bad line is an error naming its number, except a last line
// without its newline, which a crash while writing leaves behind: that one is
// skipped with a note for the page.
#include <fstream>
#include <sstream>

#include "gossip/sim/report.hpp"

namespace gossip::sim {

using nlohmann::json;
namespace fs = std::filesystem;

core::Result<MetricsRecords> read_metrics(const fs::path& metrics_jsonl) {
  const std::string name = metrics_jsonl.string();
  std::error_code ec;
  if (!fs::exists(metrics_jsonl, ec)) {
    return core::not_found(name +
                           ": no such file (gossip-sim writes metrics.jsonl in its --out folder)");
  }
  std::ifstream in(metrics_jsonl, std::ios::binary);
  if (!in) return core::io_error(name + ": cannot open for reading");
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  if (in.bad()) return core::io_error(name + ": read failed");

  MetricsRecords out;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    const bool terminated = nl != std::string::npos;
    std::string line = text.substr(pos, terminated ? nl - pos : std::string::npos);
    pos = terminated ? nl + 1 : text.size();
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = name + ": line " + std::to_string(line_no) + ": ";
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      if (!terminated) {
        out.notes.push_back("line " + std::to_string(line_no) +
                            " is incomplete (the run stopped while writing it) and was skipped.");
        break;
      }
      return core::corrupt(where + "not valid JSON at column " + std::to_string(e.byte) +
                           " (each line must be one JSON object)");
    }
    if (!j.is_object())
      return core::corrupt(where + "expected a JSON object, got " + j.type_name());
    auto type = j.find("type");
    if (type == j.end() || !type->is_string())
      return core::corrupt(where + "record without a string \"type\"");
    const std::string t = type->get<std::string>();
    if ((t == "sample" || t == "event") && !(j.contains("t_s") && j["t_s"].is_number())) {
      return core::corrupt(where + "\"" + t + "\" record without a numeric \"t_s\"");
    }
    out.records.push_back(std::move(j));
  }
  return out;
}

}  // namespace gossip::sim
