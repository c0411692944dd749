// Helpers for tests that run gossip-peer as a real process: temp folders,
// spawning with captured stdout/stderr, waiting with deadlines, reading the
// summary line and the metrics file. Failures are doctest REQUIRE/FAIL, so
// include this from test files only.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "gossip/averaging/protocol.hpp"
#include "gossip/config/config.hpp"
#include "gossip/peer/checkpoint.hpp"

namespace gossip::test {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

inline std::string build_root() {
  const char* root = std::getenv("GOSSIP_BUILD_ROOT");
  REQUIRE_MESSAGE(root != nullptr, "GOSSIP_BUILD_ROOT is set by meson test");
  return root;
}

// A fresh, empty folder /tmp/gossip-<suite>-<name>-<pid>.
inline fs::path temp_dir(const std::string& suite, const std::string& name) {
  const fs::path d = fs::temp_directory_path() /
                     ("gossip-" + suite + "-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

inline std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Proc {
  pid_t pid = -1;
  fs::path out, err;
};

// Starts gossip-peer --config <config> [extra...] at log level info, with
// stdout/stderr in <dir>/<tag>.{out,err}. A `file_size_limit` > 0 caps every
// file the process writes (RLIMIT_FSIZE, SIGXFSZ ignored): writes past it
// fail with EFBIG, as on a full disk.
inline Proc spawn(const fs::path& config, const fs::path& dir, const std::string& tag,
                  const std::vector<std::string>& extra = {}, rlim_t file_size_limit = 0) {
  Proc p{-1, dir / (tag + ".out"), dir / (tag + ".err")};
  const std::string bin = build_root() + "/peers/gossip-peer", cfg = config.string(),
                    out = p.out.string(), err = p.err.string();
  std::fflush(stdout);  // the child must not repeat the test's buffered output
  std::fflush(stderr);
  p.pid = ::fork();
  REQUIRE(p.pid >= 0);
  if (p.pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) ::_exit(99);
    if (file_size_limit > 0) {
      const rlimit cap{file_size_limit, file_size_limit};
      if (::signal(SIGXFSZ, SIG_IGN) == SIG_ERR || ::setrlimit(RLIMIT_FSIZE, &cap) != 0) {
        ::_exit(97);
      }
    }
    ::setenv("GOSSIP_LOG", "info", 1);
    std::vector<char*> argv{const_cast<char*>(bin.c_str()), const_cast<char*>("--config"),
                            const_cast<char*>(cfg.c_str())};
    for (const auto& a : extra) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(98);
  }
  return p;
}

// Whether the process has exited (without reaping it).
inline bool exited(const Proc& p) {
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(p.pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return true;
  }
  return info.si_pid != 0;
}

// Waits for the process; returns its exit code, or 128 + signal.
inline int wait_exit(const Proc& p, double timeout_s = 60) {
  const auto start = Clock::now();
  int status = 0;
  while (::waitpid(p.pid, &status, WNOHANG) == 0) {
    if (seconds_since(start) > timeout_s) {
      ::kill(p.pid, SIGKILL);
      ::waitpid(p.pid, &status, 0);
      FAIL("gossip-peer did not finish within " << timeout_s << " s: " << read_text(p.err));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Polls every `poll` until `ready` holds; fails after `timeout_s` or when one
// of `alive` has exited.
template <typename F>
void wait_for(const std::vector<const Proc*>& alive, F ready, const std::string& what,
              double timeout_s = 120,
              std::chrono::milliseconds poll = std::chrono::milliseconds(20)) {
  const auto start = Clock::now();
  while (!ready()) {
    for (const Proc* p : alive) {
      REQUIRE_MESSAGE(!exited(*p), "a gossip-peer exited while waiting for " << what << ": "
                                                                             << read_text(p->err));
    }
    REQUIRE_MESSAGE(seconds_since(start) < timeout_s,
                    "timed out after " << timeout_s << " s waiting for " << what);
    std::this_thread::sleep_for(poll);
  }
}

// Kills every process still running (a failed test must not leave peers behind).
struct Reaper {
  std::vector<Proc*> procs;
  ~Reaper() {
    for (Proc* p : procs) {
      if (p->pid > 0 && !exited(*p)) ::kill(p->pid, SIGKILL);
      if (p->pid > 0) ::waitpid(p->pid, nullptr, 0);
    }
  }
};

// A finished run of one of the project's programs (the path under the build
// folder, e.g. "tools/gossip-sim"), with stdout and stderr captured in
// <dir>/<tag>.{out,err}; status -1 when a signal ended it.
struct ProgramRun {
  int status = -1;
  std::string out, err;
  Proc files;  // for summary_of()
};

inline ProgramRun run_program(const std::string& program, const std::string& args,
                              const fs::path& dir, const std::string& tag = "run") {
  Proc files{-1, dir / (tag + ".out"), dir / (tag + ".err")};
  const int rc = std::system((build_root() + "/" + program + " " + args + " >" +
                              files.out.string() + " 2>" + files.err.string())
                                 .c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_text(files.out), read_text(files.err), files};
}

// The JSON summary on the last line of the process's stdout.
inline Json summary_of(const Proc& p) {
  const std::string out = read_text(p.out);
  const auto end = out.find_last_not_of('\n');
  REQUIRE_MESSAGE(end != std::string::npos, "no summary line; stderr: " << read_text(p.err));
  const auto start = out.rfind('\n', end);
  return Json::parse(out.substr(start == std::string::npos ? 0 : start + 1));
}

// The lines of a metrics file. `complete_only`: skip a line still being
// written (the file of a running peer); otherwise every line must parse.
inline std::vector<Json> metrics_of(const fs::path& file, bool complete_only = false) {
  std::ifstream in(file);
  std::vector<Json> lines;
  for (std::string line; std::getline(in, line);) {
    if (!complete_only) {
      lines.push_back(Json::parse(line));
      continue;
    }
    auto j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) lines.push_back(std::move(j));
  }
  return lines;
}

// Writes `dir`/`tag`.json for the small peer the process tests run: a
// 10-16-1 tanh regression on synthetic data with Adam, an exchange every 10
// steps, no evaluation by epoch, no checkpoints, metrics every 100 steps,
// listening on 127.0.0.1:`port`, with its key, data folder and the swarm key
// in `dir`. `changes` is a JSON merge patch (RFC 7396) over that: objects
// merge, arrays and values replace, null removes a key.
inline fs::path small_peer_config(const fs::path& dir, const std::string& tag, int port,
                                  const Json& changes = Json::object()) {
  Json config = {{"peer",
                  {{"listen", "127.0.0.1:" + std::to_string(port)},
                   {"identity_key", (dir / (tag + ".key")).string()},
                   {"swarm_key", (dir / "swarm.key").string()},
                   {"data_dir", (dir / tag).string()}}},
                 {"model", {{"layers", {10, 16, 1}}, {"loss", "mse"}, {"activation", "tanh"}}},
                 {"optimizer", {{"type", "adam"}, {"lr", 0.005}}},
                 {"data", {{"dataset", {{"type", "synthetic_regression"}}}, {"batch", 32}}},
                 {"training", {{"device", "cpu"}, {"eval", {{"every_epochs", 0}}}}},
                 {"gossip", {{"interval_steps", 10}}},
                 {"checkpoint", {{"every_steps", 0}}},
                 {"metrics", {{"every_steps", 100}}}};
  config.merge_patch(changes);
  const fs::path p = dir / (tag + ".json");
  std::ofstream(p) << config.dump(2);
  return p;
}

inline bool has_checkpoint(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (peer::checkpoint_step_from_name(e.path().filename().string())) return true;
  }
  return false;
}

inline bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// Runs a shell command, returning its stdout; fails the test on a non-zero exit.
inline std::string shell(const std::string& cmd) {
  FILE* pipe = ::popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  const int rc = ::pclose(pipe);
  REQUIRE_MESSAGE((WIFEXITED(rc) && WEXITSTATUS(rc) == 0), cmd << " failed: " << out);
  return out;
}

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Starts a peer whose config listens on a port chosen by `with_port` (a
// callable from a port to the config file it wrote), retrying with a fresh
// port when the bind fails (another process took it).
template <typename WriteConfig>
Proc start_listening(WriteConfig with_port, const fs::path& dir, const std::string& tag,
                     const std::vector<std::string>& extra = {}) {
  for (int attempt = 0;; ++attempt) {
    const fs::path cfg = with_port(free_port());
    Proc p = spawn(cfg, dir, tag, extra);
    const auto start = Clock::now();
    while (!contains(read_text(p.err), "listening on") && !exited(p)) {
      REQUIRE_MESSAGE(seconds_since(start) < 120, "peer " << tag << " never listened");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!exited(p)) return p;
    const int rc = wait_exit(p);
    const std::string err = read_text(p.err);
    REQUIRE_MESSAGE((rc == 1 && contains(err, "peer.listen") && attempt < 3),
                    "peer " << tag << " failed to start (" << rc << "): " << err);
  }
}

// The model fingerprint of a config file as the averaging protocol spells it
// (the form refusals quote).
inline std::string fingerprint_hex(const fs::path& config) {
  auto cfg = config::load_config(config);
  REQUIRE_MESSAGE(cfg.is_ok(), cfg.status().message());
  return averaging::fingerprint_hex(cfg->model.fingerprint());
}

// gossip-keygen identity into `file`: returns the new peer's id (hex public key).
inline std::string make_identity(const std::filesystem::path& file) {
  const std::string keygen = build_root() + "/tools/gossip-keygen";
  shell(keygen + " identity --out " + file.string() + " >/dev/null");
  std::string id = shell(keygen + " peer-id " + file.string());
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  REQUIRE(id.size() == 64);
  return id;
}

}  // namespace gossip::test
