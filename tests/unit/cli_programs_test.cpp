// Every program's command line behaves alike (cli::Program): --help and
// --version answer on stdout with exit 0, the version is the project's, and
// an unknown option exits 2 with one line on stderr naming it.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gossip/cli/program.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

// The programs, as paths under the build folder.
constexpr const char* kPrograms[] = {
    "peers/gossip-peer",     "peers/gossip-ctl",    "tools/gossip-sim",  "tools/gossip-keygen",
    "tools/gossip-generate", "tools/gossip-export", "tools/gossip-bench"};

struct Run {
  int status = -1;
  std::string out, err;
};

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs `program` with `args`, `env` ("NAME=VALUE ...") prefixed to its command.
Run run(const std::string& program, const std::string& args, const std::string& env = "") {
  const char* root = std::getenv("GOSSIP_BUILD_ROOT");
  const fs::path exe = fs::path(root ? root : ".") / program;
  REQUIRE_MESSAGE(fs::exists(exe), exe.string(), " not built: run the tests with meson test");
  gossip::test::TempDir dir("gossip-cli");
  const int rc = std::system((env + " " + exe.string() + " " + args + " >" + dir.file("out") +
                              " 2>" + dir.file("err") + " </dev/null")
                                 .c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_text(dir.path() / "out"),
          read_text(dir.path() / "err")};
}

}  // namespace

TEST_CASE("every program answers --help, --version and an unknown option the same way") {
  for (const std::string program : kPrograms) {
    const std::string name = fs::path(program).filename().string();
    CAPTURE(name);

    const Run help = run(program, "--help");
    CHECK(help.status == 0);
    CHECK(help.out.rfind("usage: " + name + " ", 0) == 0);
    CHECK(help.out.find("--version") != std::string::npos);
    CHECK(help.err.empty());
    const Run short_help = run(program, "-h");
    CHECK(short_help.status == 0);
    CHECK(short_help.out == help.out);

    const Run version = run(program, "--version");
    CHECK(version.status == 0);
    CHECK(version.out == name + " " + gossip::cli::version() + "\n");
    CHECK(version.err.empty());

    const Run unknown = run(program, "--frobnicate");
    CHECK(unknown.status == 2);
    CHECK(unknown.out.empty());
    CHECK(unknown.err.rfind(name + ": ", 0) == 0);
    CHECK(unknown.err.find("'--frobnicate'") != std::string::npos);
    CHECK(unknown.err.find('\n') == unknown.err.size() - 1);  // one line
  }
}

TEST_CASE("the version is meson's project version") {
  const std::string version = gossip::cli::version();
  const char* root = std::getenv("GOSSIP_SOURCE_ROOT");
  const std::string meson = read_text(fs::path(root ? root : ".") / "meson.build");
  CHECK(meson.find("version: '" + version + "'") != std::string::npos);
}

TEST_CASE("a bad GOSSIP_LOG_FORMAT stops every program at start-up, naming the variable") {
  // Command lines that parse, so that the environment is what fails.
  const std::pair<const char*, const char*> cases[] = {
      {"peers/gossip-peer", "--config does-not-matter.json"},
      {"tools/gossip-keygen", "peer-id does-not-matter.key"},
      {"tools/gossip-sim", "--config does-not-matter.json"},
      {"peers/gossip-ctl", "status 127.0.0.1:1 --swarm-key does-not-matter.key"},
  };
  for (const auto& [program, args] : cases) {
    CAPTURE(program);
    const Run bad = run(program, args, "GOSSIP_LOG_FORMAT=xml");
    CHECK(bad.status == 2);
    CHECK(bad.err == fs::path(program).filename().string() +
                         ": GOSSIP_LOG_FORMAT: 'xml' is not a log format (use text or json)\n");
    // --help still answers: the environment is read after it.
    CHECK(run(program, "--help", "GOSSIP_LOG_FORMAT=xml").status == 0);
  }
}
