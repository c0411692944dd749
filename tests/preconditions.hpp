// What a test needs from the machine, said out loud. Two kinds:
//  - what tools/bootstrap installs (Fashion-MNIST, the Noise vectors): the
//    test requires it and fails, naming the package, when it is missing;
//  - what no package can give (an AES-NI CPU, a resolver that answers "no
//    such host"): the test case calls skip() and returns. The executable
//    still runs its other test cases; when none failed, it prints each
//    reason and exits 77, Meson's SKIP (tests/test_main.cpp).
// A green run therefore means every test case ran.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

namespace gossip::test {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Fails the test case unless Debian's dataset-fashion-mnist is installed.
inline void require_fashion_mnist() {
  const std::string file = std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz";
  REQUIRE_MESSAGE(std::filesystem::exists(file),
                  file << " is missing: install the package dataset-fashion-mnist "
                          "(tools/bootstrap does this)");
}

// Why test cases of this executable did not run (see skip()).
inline std::vector<std::string>& skipped_reasons() {
  static std::vector<std::string> reasons;
  return reasons;
}

// Records that the current test case cannot run here, and why; the caller
// returns. The executable then exits 77 instead of 0.
inline void skip(const std::string& reason) {
  MESSAGE("skipped: " << reason);
  skipped_reasons().push_back(reason);
}

}  // namespace gossip::test
