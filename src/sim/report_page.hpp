// The HTML page around the report's charts (internal to module sim): header
// with the run's configuration, notes, the final summary table, the charts,
// the event list, the peers at the last sample, and the small inline script
// that checks the charts rendered. No external resource of any kind.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"

namespace gossip::sim {

// Everything the page shows; the pointers borrow records that outlive the call.
struct PageInput {
  std::string title;
  const nlohmann::json* start = nullptr;         // the "start" record, if any
  const nlohmann::json* final = nullptr;         // the "final" record, if any
  const nlohmann::json* last_sample = nullptr;   // never null
  const nlohmann::json* first_sample = nullptr;  // never null
  std::vector<const nlohmann::json*> events;
  std::vector<std::string> notes;
  std::vector<std::string> charts;  // rendered <svg> (or "no data") fragments
};

// The whole HTML document.
std::string render_page(const PageInput& in);

// Writes `html` to `path` through `path`.tmp and a rename; creates the parent
// folder if needed.
core::Status write_page(const std::string& html, const std::filesystem::path& path);

}  // namespace gossip::sim
