// cli::Program: what every program's command line shares, so that they all
// behave alike. Parsing is CLI11's (Debian's libcli11-dev); on top of it:
// -h/--help and --version on every program, one help layout (usage lines,
// what the program does, the options), usage errors as one line
// "<program>: <why> (try --help)" naming the option, the exit statuses, the
// stop flag that SIGINT/SIGTERM set, and the summary line a long-running
// program ends with. Mains stay thin: a Program, its options, parse, work.
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"

namespace gossip::cli {

// Exit statuses, the same for every program (docs/operations.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the work failed at run time
inline constexpr int kExitUsage = 2;    // bad usage, config or key files

// The project's version (meson's project version), as --version prints it.
const char* version();

// The exit status for an error: kExitUsage for an invalid argument (a bad
// config, a key file, a model the swarm refuses), kExitFailure otherwise.
int exit_status(const core::Status& status);

// Installs handlers for SIGINT and SIGTERM (again on each call) that set the
// returned flag, so the program stops at its next check (a peer after its
// current step); a second signal exits at once with status 130.
const std::atomic<bool>& stop_on_signals();

class Program {
 public:
  // `name` as the user types it ("gossip-peer"); `usage`: the synopsis
  // lines, each without "usage: "; `about`: what the program does, shown
  // under them in --help.
  Program(std::string name, std::vector<std::string> usage, std::string about);
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  // The parser, for adding options and subcommands. Options given twice keep
  // the last value unless an option says otherwise.
  CLI::App& app() { return app_; }
  const std::string& name() const { return name_; }
  // A subcommand ("gossip-keygen identity"), listed under "commands:".
  CLI::App* add_command(const std::string& name, const std::string& description);
  // The --help text of the program itself (whatever subcommand was given).
  std::string help() const;

  // Parses the command line. nullopt: go on. Otherwise the exit status to
  // return at once: kExitOk after --help or --version (printed on stdout),
  // kExitUsage after bad usage (one line on stderr), where an unknown option
  // or argument is named before any other problem, and kExitUsage when
  // GOSSIP_LOG_FORMAT is not a log format (core::check_log_format_env). With
  // app().prefix_command(), what follows the first unknown argument is left
  // to the caller (app().remaining()).
  std::optional<int> parse(int argc, char** argv);

  // "<name>: <why> (try --help)" on stderr; returns kExitUsage.
  int usage_error(const std::string& why) const;
  // "<name>: <why>" on stderr; returns `status`.
  int fail(const std::string& why, int status = kExitFailure) const;
  // fail(status.message(), exit_status(status)).
  int fail(const core::Status& status) const;

  // Prints `summary` as one JSON object on the last line of stdout. When its
  // "error" is a string, repeats it on stderr as "<name>: <error>" and
  // returns `failure_status`; else returns kExitOk.
  int report(const nlohmann::json& summary, int failure_status = kExitFailure) const;

 private:
  std::string name_;
  CLI::App app_;
};

}  // namespace gossip::cli
