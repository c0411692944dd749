// The one doctest main shared by every test executable. It exits 77
// (Meson's SKIP) instead of 0 when a test case could not run on this machine
// and said why with gossip::test::skip(); failures still exit non-zero.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "preconditions.hpp"

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int failed = context.run();
  if (context.shouldExit() || failed != 0) return failed;
  const auto& reasons = gossip::test::skipped_reasons();
  if (reasons.empty()) return 0;
  for (const auto& r : reasons) std::fprintf(stderr, "SKIP: %s\n", r.c_str());
  return 77;
}
