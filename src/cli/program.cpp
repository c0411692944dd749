// cli::Program: CLI11 set up the one way every program uses, the help
// layout, and the error lines and exit statuses (include/gossip/cli/program.hpp).
#include "gossip/cli/program.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "gossip/core/log.hpp"

#ifndef GOSSIP_VERSION
#error "GOSSIP_VERSION must be defined (src/cli/meson.build passes meson's project version)"
#endif

namespace gossip::cli {
namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
  if (g_stop.exchange(true)) std::_Exit(130);  // a second signal exits at once
}

// --help: the usage lines first, then what the program does, then the
// options (and commands), then the footer.
class HelpFormatter : public CLI::Formatter {
 public:
  explicit HelpFormatter(std::vector<std::string> usage) : usage_(std::move(usage)) {
    label("Usage", "usage");
    label("OPTIONS", "options");
    label("SUBCOMMAND", "COMMAND");
    label("REQUIRED", "(required)");
    label("Positionals", "arguments");
    column_width(24);
  }

  std::string make_help(const CLI::App* app, std::string name,
                        CLI::AppFormatMode mode) const override {
    if (mode == CLI::AppFormatMode::Sub) return make_expanded(app);
    std::string out = make_usage(app, name);
    if (!app->get_description().empty()) out += "\n" + app->get_description() + "\n";
    out += make_positionals(app) + make_groups(app, mode) + make_subcommands(app, mode);
    if (!app->get_footer().empty()) out += "\n" + app->get_footer() + "\n";
    return out;
  }

  std::string make_usage(const CLI::App* app, std::string name) const override {
    if (app->get_parent() != nullptr || usage_.empty()) {
      return CLI::Formatter::make_usage(app, name);
    }
    std::string out;
    for (size_t i = 0; i < usage_.size(); ++i) {
      out += (i == 0 ? "usage: " : "       ") + usage_[i] + "\n";
    }
    return out;
  }

 private:
  std::vector<std::string> usage_;
};

}  // namespace

const char* version() {
  return GOSSIP_VERSION;
}

int exit_status(const core::Status& status) {
  if (status) return kExitOk;
  return status.code() == core::Code::kInvalidArgument ? kExitUsage : kExitFailure;
}

const std::atomic<bool>& stop_on_signals() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  return g_stop;
}

Program::Program(std::string name, std::vector<std::string> usage, std::string about)
    : name_(std::move(name)), app_(std::move(about), name_) {
  app_.formatter(std::make_shared<HelpFormatter>(std::move(usage)));
  app_.option_defaults()->group("options");
  app_.set_help_flag("-h,--help", "print this help and exit");
  app_.set_version_flag("--version", name_ + " " + version(), "print the version and exit");
  app_.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  // Unknown options and arguments are left over, so that parse() can name
  // them first (CLI11 would otherwise report a missing required option).
  app_.allow_extras();
}

CLI::App* Program::add_command(const std::string& name, const std::string& description) {
  CLI::App* command = app_.add_subcommand(name, description)->group("commands");
  command->get_help_ptr()->group("options");
  return command;
}

std::string Program::help() const {
  return app_.get_formatter()->make_help(&app_, name_, CLI::AppFormatMode::Normal);
}

std::optional<int> Program::parse(int argc, char** argv) {
  auto unexpected = [&]() -> std::optional<int> {
    const auto extras = app_.remaining(/*recurse=*/true);
    if (extras.empty() || app_.get_prefix_command()) return std::nullopt;  // the caller's
    const std::string& first = extras.front();
    if (first.size() > 1 && first[0] == '-') return usage_error("unknown option '" + first + "'");
    if (!app_.get_subcommands({}).empty() && app_.get_subcommands().empty()) {
      return usage_error("unknown command '" + first + "'");
    }
    return usage_error("unexpected argument '" + first + "'");
  };
  try {
    app_.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app_.exit(e, std::cout, std::cerr);
  } catch (const CLI::CallForVersion& e) {
    return app_.exit(e, std::cout, std::cerr);
  } catch (const CLI::ParseError& e) {
    if (auto status = unexpected()) return status;
    return usage_error(e.what());
  }
  if (auto status = unexpected()) return status;
  // After --help and --version, which work whatever the environment says.
  if (auto st = core::check_log_format_env(); !st) return fail(st.message(), kExitUsage);
  return std::nullopt;
}

int Program::usage_error(const std::string& why) const {
  std::fprintf(stderr, "%s: %s (try --help)\n", name_.c_str(), why.c_str());
  return kExitUsage;
}

int Program::fail(const std::string& why, int status) const {
  std::fprintf(stderr, "%s: %s\n", name_.c_str(), why.c_str());
  return status;
}

int Program::fail(const core::Status& status) const {
  return fail(status.message(), exit_status(status));
}

int Program::report(const nlohmann::json& summary, int failure_status) const {
  std::cout << summary.dump() << std::endl;
  const auto error = summary.find("error");
  if (error != summary.end() && error->is_string()) {
    return fail(error->get<std::string>(), failure_status);
  }
  return kExitOk;
}

}  // namespace gossip::cli
