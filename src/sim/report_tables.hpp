// The report's tables and the number formats the page shares (internal to
// module sim): the summary of the figures people look for, one row per peer,
// the event list. Pure functions of the page's input; any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "report_page.hpp"

namespace gossip::sim {

// table#summary: tr[data-key] rows, each a figure, its value (td.num) and
// its context (td.note); problems first (class warn).
std::string summary_table(const PageInput& in);

// section#peers-section with its heading and table#peers: one tbody row per
// peer (the final evaluations, else the last sample); "" when there are none.
std::string peers_table(const PageInput& in);

// table#events, or a line saying there were none.
std::string events_table(const PageInput& in);

// The record the summary reads: the final one, else the last sample.
const nlohmann::json& figures(const PageInput& in);

// How the page writes numbers and reads fields.
namespace page_format {

// A finite number field of `j`, if there is one.
std::optional<double> num(const nlohmann::json& j, const char* key);
// A string field of `j`, else "".
std::string text(const nlohmann::json& j, const char* key);
std::string printf_string(const char* format, double v);
// 4068 -> "4,068".
std::string grouped(double v);
// 0.8812 -> "88.12%".
std::string percent(double fraction);
// "4.82 s", "24.0 s", "128 s".
std::string seconds(double s);
// Decimal units: "354.2 MB".
std::string bytes(double b);
// Four significant digits, trailing zeros kept: "0.3680".
std::string sig(double v);

}  // namespace page_format
}  // namespace gossip::sim
