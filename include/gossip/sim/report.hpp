// The simulation report: one self-contained HTML page drawn from the
// swarm-wide records of metrics.jsonl (see the sim schema: "start", "event",
// "sample", "final"). The page needs nothing from the network: its charts are
// plain inline SVG present in the HTML, its style is inline, and its one small
// inline script only checks that the charts rendered (it sets
// document.body.dataset.chartsOk / chartsTotal, which the browser test reads).
//
// Element contract (tests and users rely on these names):
//   header                        the run's name and one line about it; the
//                                 lead chart is the element right after it
//   svg.chart#chart-accuracy      test accuracy over t_s (test loss for regression
//                                 tasks, said in the title; next-byte accuracy for a
//                                 language model); one or more
//                                 polyline.series.peer[data-peer=i] per peer (a new
//                                 polyline where the peer was dead or absent),
//                                 polyline.series.averaged for the averaged model;
//                                 the lead chart unless the task is a language model
//                                 or nothing trains (average_only: no such chart)
//   svg.chart#chart-bits-per-byte (language model, the lead chart) test loss in bits
//                                 per byte, lines as above
//   svg.chart#chart-accuracy-late, #chart-bits-per-byte-late   the chart above with
//                                 the y axis zoomed on the second half of the run
//                                 (only where that shows more)
//   svg.chart#chart-consensus     consensus distance over t_s, log y (the lead chart in
//                                 average_only runs); polyline.series.consensus, and
//                                 in average_only runs polyline.series.theory
//   svg.chart#chart-consensus-exchanges   (average_only only) x = exchange_pairs,
//                                 measured (series consensus) vs theory (series theory)
//   svg.chart#chart-exchanges     cumulative exchanges ok / busy / failed over t_s
//   svg.chart#chart-members       alive peers and members_min / members_max over t_s
//   g.event[data-event=kind]      one per "event" record on every chart: a vertical
//                                 line, a label and a <title> with the detail (on
//                                 the chart against exchanges, at the exchanges done
//                                 by then)
//   table#summary                 tr[data-key] rows of the figures people look for
//                                 (averaged_accuracy, worst_peer_accuracy,
//                                 time_to_0.85, averaged_bits_per_byte, averaged_loss,
//                                 worst_peer_loss, measured_factor, consensus_distance,
//                                 exchanges, bytes, alive, wall, and error,
//                                 failed_peers, events_not_fired when they apply);
//                                 the value in td.num, its context in td.note
//   table#peers                   one tbody row per peer, numbers in td.num
//   table#events, ul#notes        the event list; what the reader skipped or clamped
//   details#all-figures           every field of the final record (table#figures)
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"

namespace gossip::sim {

// The records of one metrics.jsonl, in file order, plus notes for the reader
// of the report about what was skipped (e.g. a torn last line).
struct MetricsRecords {
  std::vector<nlohmann::json> records;
  std::vector<std::string> notes;
};

// Reads a metrics.jsonl file. Every non-empty line must be a JSON object with
// a string "type"; "sample" and "event" records need a numeric "t_s". A bad
// line is an error naming the file and its line number ("corrupt:
// run/metrics.jsonl: line 7: ..."), except a last line that does not end in a
// newline (a crash while writing it): it is skipped with a note. Unknown
// record types are kept (and ignored by the report). Missing or unreadable
// file: not_found / io error. Any thread.
core::Result<MetricsRecords> read_metrics(const std::filesystem::path& metrics_jsonl);

// Renders the HTML page for `records` (file order). `notes` are listed in the
// page. Fails (invalid_argument) when there is no "sample" record with a
// numeric t_s. Pure function; any thread.
core::Result<std::string> render_report(const std::vector<nlohmann::json>& records,
                                        const std::string& title,
                                        const std::vector<std::string>& notes = {});

// Renders `records` and writes the page to `html_out` (through a temporary
// file renamed into place, so a reader never sees half a page). Any thread.
core::Status write_report(const std::vector<nlohmann::json>& records,
                          const std::filesystem::path& html_out, const std::string& title);

// read_metrics + render_report + write, the notes of the reader included.
core::Status write_report(const std::filesystem::path& metrics_jsonl,
                          const std::filesystem::path& html_out, const std::string& title);

}  // namespace gossip::sim
