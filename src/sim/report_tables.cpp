// The report's tables: the summary of the figures people look for (what
// went wrong, the averaged model, the worst peer, time to target, consensus,
// exchanges, bytes, peers, run time), one row per peer with right-aligned
// numbers, and the event list; with the number formats the page shares.
#include "report_tables.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "report_svg.hpp"

namespace gossip::sim {

using nlohmann::json;

namespace page_format {

std::optional<double> num(const json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

std::string text(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string printf_string(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// 4068 -> "4,068".
std::string grouped(double v) {
  const std::string digits = printf_string("%.0f", std::abs(v));
  std::string out = v < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string percent(double fraction) {
  return printf_string("%.2f", 100 * fraction) + "%";
}

std::string seconds(double s) {
  return printf_string(s < 10 ? "%.2f" : s < 100 ? "%.1f" : "%.0f", s) + " s";
}

// Decimal units, as the progress line prints them.
std::string bytes(double b) {
  if (b >= 1e9) return printf_string("%.2f", b / 1e9) + " GB";
  if (b >= 1e6) return printf_string("%.1f", b / 1e6) + " MB";
  if (b >= 1e3) return printf_string("%.1f", b / 1e3) + " kB";
  return grouped(b) + " B";
}

// Four significant digits, trailing zeros kept so a column lines up
// ("0.3680" under "0.3665").
std::string sig(double v) {
  std::string s = printf_string("%#.4g", v);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace page_format

const json& figures(const PageInput& in) {
  return in.final ? *in.final : *in.last_sample;
}

namespace {

using namespace page_format;

const char* const kDash = "&ndash;";  // a value that is not there (dead peer, no data)

// Each peer's row: the final evaluations, else the peers at the last sample.
const json& peer_rows(const PageInput& in) {
  static const json kNone = json::array();
  if (in.final && in.final->contains("final_peers") && (*in.final)["final_peers"].is_array())
    return (*in.final)["final_peers"];
  const json& s = *in.last_sample;
  return s.contains("peers") && s["peers"].is_array() ? s["peers"] : kNone;
}

bool alive(const json& peer) {
  return !peer.contains("alive") || peer["alive"] == true;
}

bool uses_loss(Task t) {
  return t == Task::kRegression || t == Task::kLanguageModel;
}

// The live peer with the lowest accuracy (or the highest loss when the task
// is judged by its loss): its index in peer_rows, or none.
std::optional<size_t> worst_peer(const PageInput& in) {
  if (in.task == Task::kAverageOnly) return std::nullopt;
  const json& rows = peer_rows(in);
  const char* key = uses_loss(in.task) ? "test_loss" : "test_accuracy";
  std::optional<size_t> worst;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto v = num(rows[i], key);
    if (!v || !alive(rows[i])) continue;
    const double w = worst ? *num(rows[*worst], key) : 0;
    if (!worst || (uses_loss(in.task) ? *v > w : *v < w)) worst = i;
  }
  return worst;
}

std::string peer_name(const json& peer) {
  auto i = num(peer, "index");
  return i ? "peer " + grouped(*i) : "a peer";
}

// One row of the summary: a figure, its value (right-aligned when a number),
// and a note that puts it in context.
struct Row {
  std::string key;  // data-key
  std::string label;
  std::string value;
  std::string note;
  bool number = true;
  bool warn = false;
};

void add_model_rows(const PageInput& in, std::vector<Row>& rows) {
  const json& f = figures(in);
  const double ln2 = std::log(2.0);
  auto first_loss = num(*in.first_sample, "averaged_model_loss");
  const std::string first_look =
      first_loss
          ? "first look " + sig(in.task == Task::kLanguageModel ? *first_loss / ln2 : *first_loss)
          : "";
  const auto worst = worst_peer(in);
  const json* wp = worst ? &peer_rows(in)[*worst] : nullptr;
  switch (in.task) {
    case Task::kClassification: {
      if (auto acc = num(f, "averaged_model_accuracy")) {
        auto loss = num(f, "averaged_model_loss");
        rows.push_back({"averaged_accuracy", "Averaged model: test accuracy", percent(*acc),
                        loss ? "test loss " + sig(*loss) : ""});
      }
      auto mean = num(f, "mean_test_accuracy");
      const std::string mean_note = mean ? "mean of the peers " + percent(*mean) : "";
      if (wp) {
        rows.push_back({"worst_peer_accuracy", "Worst peer: test accuracy",
                        percent(*num(*wp, "test_accuracy")),
                        peer_name(*wp) + (mean ? "; " + mean_note : "")});
      } else if (auto lo = num(f, "min_test_accuracy")) {
        rows.push_back(
            {"worst_peer_accuracy", "Worst peer: test accuracy", percent(*lo), mean_note});
      }
      const json tta = f.value("time_to_accuracy_s", json());
      if (tta.is_object()) {
        for (auto it = tta.begin(); it != tta.end(); ++it) {
          double target = 0;
          if (std::sscanf(it.key().c_str(), "%lf", &target) != 1) continue;
          const bool reached = it->is_number();
          rows.push_back(
              {"time_to_" + it.key(), "Time to " + printf_string("%g", 100 * target) + "%",
               reached ? seconds(it->get<double>()) : "<span class=\"muted\">not reached</span>",
               "averaged model, first sample at or above"});
        }
      }
      break;
    }
    case Task::kLanguageModel: {
      if (auto loss = num(f, "averaged_model_loss")) {
        rows.push_back({"averaged_bits_per_byte", "Averaged model: bits per byte", sig(*loss / ln2),
                        first_look});
        auto acc = num(f, "averaged_model_accuracy");
        rows.push_back({"averaged_loss", "Averaged model: test loss", sig(*loss) + " nats/byte",
                        acc ? "next-byte accuracy " + percent(*acc) : ""});
      }
      if (wp) {
        const double loss = *num(*wp, "test_loss");
        rows.push_back({"worst_peer_bits_per_byte", "Worst peer: bits per byte", sig(loss / ln2),
                        peer_name(*wp) + "; " + sig(loss) + " nats/byte"});
      }
      break;
    }
    case Task::kRegression: {
      if (auto loss = num(f, "averaged_model_loss"))
        rows.push_back({"averaged_loss", "Averaged model: test loss", sig(*loss), first_look});
      auto mean = num(f, "mean_test_loss");
      if (wp) {
        rows.push_back({"worst_peer_loss", "Worst peer: test loss", sig(*num(*wp, "test_loss")),
                        peer_name(*wp) + (mean ? "; mean of the peers " + sig(*mean) : "")});
      }
      break;
    }
    case Task::kAverageOnly: {
      auto measured = num(f, "measured_factor");
      auto theory = num(f, "theory_factor");
      if (measured) {
        auto slower = num(f, "decay_vs_theory");
        std::string note = theory ? "theory 1 &minus; 1/(n&minus;1) = " + sig(*theory) : "";
        // decay_vs_theory = ln(theory) / ln(measured): the exchanges the swarm
        // needs for the theory's one.
        if (slower)
          note += "; needs " + printf_string("%.2f", *slower) + "&times; the exchanges it predicts";
        rows.push_back({"measured_factor", "Consensus decay per exchange", sig(*measured), note});
      }
      break;
    }
  }
}

void add_swarm_rows(const PageInput& in, std::vector<Row>& rows) {
  const json& f = figures(in);
  if (auto d = num(f, "consensus_distance")) {
    rows.push_back({"consensus_distance", "Consensus distance at the end", sig(*d),
                    "mean &#8214;x<sub>i</sub> &minus; x&#772;&#8214;&sup2; / "
                    "&#8214;x&#772;&#8214;&sup2;"});
  }
  if (auto ok = num(f, "exchanges_ok")) {
    std::string note = "busy " + grouped(num(f, "exchanges_busy").value_or(0)) + ", failed " +
                       grouped(num(f, "exchanges_failed").value_or(0)) +
                       " (each side counts its own)";
    if (auto pairs = num(f, "exchange_pairs")) note += "; " + grouped(*pairs) + " pairwise";
    rows.push_back({"exchanges", "Exchanges completed", grouped(*ok), note});
  }
  if (auto b = num(f, "bytes_total")) {
    rows.push_back(
        {"bytes", "Bytes moved", bytes(*b), grouped(*b) + " B sent + received, all peers"});
  }
  if (auto a = num(f, "alive")) {
    std::map<std::string, int> states;
    for (const auto& p : peer_rows(in)) {
      if (!alive(p)) ++states[p.value("state", std::string("gone"))];
    }
    std::string note;
    if (auto started = num(f, "peers"); started && in.final)
      note = "of " + grouped(*started) + " started";
    std::string gone;
    for (const auto& [state, n] : states)
      gone += (gone.empty() ? "" : ", ") + std::to_string(n) + " " + state;
    if (!gone.empty()) note += (note.empty() ? "" : "; ") + gone;
    // The final record counts the peers that ran to the end; a sample, those
    // still running.
    rows.push_back(
        {"alive", in.final ? "Peers that finished" : "Peers running", grouped(*a), note});
  }
  if (auto wall = num(f, "wall_s")) {
    auto startup = num(f, "startup_s");
    rows.push_back({"wall", "Run time", seconds(*wall),
                    startup ? "after " + seconds(*startup) + " of start-up" : ""});
  } else if (auto t = num(f, "t_s")) {
    rows.push_back({"wall", "Last sample at", seconds(*t), "the run wrote no final record"});
  }
}

// What went wrong, first: a run error, failed peers, events that never
// happened, killed peers still in a view.
void add_problem_rows(const PageInput& in, std::vector<Row>& rows) {
  const json& f = figures(in);
  if (auto e = text(f, "error"); !e.empty())
    rows.push_back({"error", "Run failed", svg::escape(e), "", false, true});
  const json failed = f.value("failed_peers", json());
  if (failed.is_array() && !failed.empty()) {
    std::string v;
    for (const auto& p : failed)
      v += (v.empty() ? "" : "<br>") + peer_name(p) + ": " + svg::escape(text(p, "error"));
    rows.push_back({"failed_peers", "Failed peers", v, "", false, true});
  }
  const json not_fired = f.value("events_not_fired", json());
  if (not_fired.is_array() && !not_fired.empty()) {
    std::string v;
    for (const auto& e : not_fired) {
      v += (v.empty() ? "" : ", ") + svg::escape(text(e, "event"));
      if (auto s = num(e, "at_s")) v += " at " + seconds(*s);
      if (auto s = num(e, "at_step")) v += " at step " + grouped(*s);
    }
    rows.push_back(
        {"events_not_fired", "Events that never happened", v, "the run ended first", false, true});
  }
  if (auto k = num(f, "killed_still_in_views"); k && *k > 0) {
    rows.push_back({"killed_still_in_views", "Killed peers still in a view", grouped(*k),
                    "membership has not noticed yet", true, true});
  }
}

// A column of the peer table: how to show one field of a peer's record.
struct Column {
  const char* key;
  const char* header;
  std::string (*format)(double);
};

std::string format_count(double v) {
  return grouped(v);
}
std::string format_ms(double v) {
  return printf_string(v < 10 ? "%.1f" : "%.0f", v);
}
std::string format_bits(double nats) {
  return sig(nats / std::log(2.0));
}

}  // namespace

std::string summary_table(const PageInput& in) {
  std::vector<Row> rows;
  add_problem_rows(in, rows);
  add_model_rows(in, rows);
  add_swarm_rows(in, rows);
  std::string o = "<table id=\"summary\">\n";
  for (const auto& r : rows) {
    o += "<tr data-key=\"" + svg::escape(r.key) + "\"" + (r.warn ? " class=\"warn\"" : "") +
         "><th>" + r.label + "</th><td" + (r.number ? " class=\"num\"" : "") + ">" + r.value +
         "</td><td class=\"note\">" + r.note + "</td></tr>\n";
  }
  return o + "</table>\n";
}

std::string peers_table(const PageInput& in) {
  const json& rows = peer_rows(in);
  if (rows.empty()) return "";
  std::vector<Column> columns;
  if (in.task != Task::kAverageOnly) columns.push_back({"step", "step", format_count});  // 0 there
  if (in.task == Task::kClassification) columns.push_back({"test_accuracy", "test acc.", percent});
  if (in.task == Task::kLanguageModel) columns.push_back({"test_loss", "bits/byte", format_bits});
  columns.push_back(
      {"test_loss", in.task == Task::kLanguageModel ? "test loss (nats)" : "test loss", sig});
  columns.push_back({"train_loss", "train loss", sig});
  columns.push_back({"exchanges_ok", "exchanges", format_count});
  columns.push_back({"members", "view", format_count});
  columns.push_back({"exchange_ms", "exchange ms", format_ms});
  // A column no peer has a value for says nothing (averaging-only runs).
  std::erase_if(columns, [&](const Column& c) {
    return std::none_of(rows.begin(), rows.end(),
                        [&](const json& p) { return num(p, c.key).has_value(); });
  });
  // Joiners: their first evaluation on the state they downloaded.
  std::map<int, std::string> joined;
  const json joiners = in.final ? in.final->value("joiners", json()) : json();
  if (joiners.is_array()) {
    for (const auto& j : joiners) {
      auto index = num(j, "index");
      if (!index) continue;
      std::string v;
      if (auto acc = num(j, "first_test_accuracy")) {
        v = percent(*acc);
        if (auto swarm = num(j, "swarm_mean_accuracy")) v += " (swarm " + percent(*swarm) + ")";
      } else if (auto loss = num(j, "first_test_loss")) {
        v = "loss " + sig(*loss);
      }
      joined[static_cast<int>(*index)] = v;
    }
  }
  const auto worst = worst_peer(in);
  const bool final_rows = in.final && in.final->contains("final_peers");
  std::string o =
      "<section id=\"peers-section\">\n<h2>" +
      std::string(final_rows ? "Peers at the end (final evaluation, whole test set)"
                             : "Peers at the last sample (t = " +
                                   seconds(num(*in.last_sample, "t_s").value_or(0)) + ")") +
      "</h2>\n<table id=\"peers\">\n<thead><tr><th class=\"num\">peer</th><th>state</th>";
  for (const auto& c : columns) o += std::string("<th class=\"num\">") + c.header + "</th>";
  if (!joined.empty()) o += "<th class=\"num\">on joining</th>";
  o += "</tr></thead>\n<tbody>\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& p = rows[i];
    std::string cls = !alive(p) ? "gone" : worst && *worst == i ? "worst" : "";
    auto index = num(p, "index");
    o += "<tr" + (cls.empty() ? "" : " class=\"" + cls + "\"") + "><td class=\"num\">" +
         (index ? grouped(*index) : kDash) + "</td><td>" + svg::escape(text(p, "state")) +
         (cls == "worst" ? " (worst)" : "") + "</td>";
    for (const auto& c : columns) {
      auto v = num(p, c.key);
      o += "<td class=\"num\">" + (v ? c.format(*v) : std::string(kDash)) + "</td>";
    }
    if (!joined.empty()) {
      auto it = index ? joined.find(static_cast<int>(*index)) : joined.end();
      o += "<td class=\"num\">" + (it != joined.end() ? it->second : std::string()) + "</td>";
    }
    o += "</tr>\n";
  }
  return o + "</tbody>\n</table>\n</section>\n";
}

std::string events_table(const PageInput& in) {
  if (in.events.empty()) return "<p id=\"events-none\">No scripted events.</p>\n";
  std::string o =
      "<table id=\"events\">\n<thead><tr><th class=\"num\">t</th><th>event</th><th>detail</th>"
      "<th class=\"num\">step (most advanced peer)</th></tr></thead>\n<tbody>\n";
  for (const json* e : in.events) {
    auto t = num(*e, "t_s");
    auto step = num(*e, "step_max");
    o += "<tr><td class=\"num\">" + (t ? seconds(*t) : kDash) + "</td><td>" +
         svg::escape(text(*e, "event")) + "</td><td>" + svg::escape(text(*e, "detail")) +
         "</td><td class=\"num\">" + (step ? grouped(*step) : kDash) + "</td></tr>\n";
  }
  return o + "</tbody>\n</table>\n";
}

// A language model's text from the averaged model, at the first look and
// at the end (sampling.cpp writes "text_sample" into both records).
}  // namespace gossip::sim
