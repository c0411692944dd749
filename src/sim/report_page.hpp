// The HTML page around the report's charts (internal to module sim): a header
// naming the run in one line, the charts (the lead one across the page, the
// others two to a row), then the summary of the figures people look for and
// the peers, the averaged model's text for a language model, the events, the
// notes, every figure of the final record folded away, and the small inline
// script that checks the charts rendered. No external resource of any kind.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"

namespace gossip::sim {

// What the run trained, which decides the summary's rows and the peer columns.
enum class Task { kClassification, kRegression, kLanguageModel, kAverageOnly };

// Everything the page shows; the pointers borrow records that outlive the call.
struct PageInput {
  std::string title;
  Task task = Task::kClassification;
  const nlohmann::json* start = nullptr;         // the "start" record, if any
  const nlohmann::json* final = nullptr;         // the "final" record, if any
  const nlohmann::json* last_sample = nullptr;   // never null
  const nlohmann::json* first_sample = nullptr;  // never null
  std::vector<const nlohmann::json*> events;
  std::vector<std::string> notes;
  // Rendered <svg> (or "no data") fragments: the lead chart first, across the
  // page; the others share rows.
  std::vector<std::string> charts;
};

// The whole HTML document.
std::string render_page(const PageInput& in);

// Writes `html` to `path` through `path`.tmp and a rename; creates the parent
// folder if needed.
core::Status write_page(const std::string& html, const std::filesystem::path& path);

}  // namespace gossip::sim
