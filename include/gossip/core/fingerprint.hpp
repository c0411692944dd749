// A model fingerprint (train::ModelSpec::fingerprint(), a 64-bit hash of the
// architecture) as text: "0x" and 16 lowercase hex digits, e.g.
// "0x530af80e3078cf1d". One form for people and files: checkpoint headers
// (docs/formats.md), the STATUS frame's "model" and every message that names
// a fingerprint. The prefix says the digits are hex (a fingerprint can be all
// decimal digits) and the fixed width keeps leading zeros, so two printed
// fingerprints compare by eye.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gossip::core {

// "0x" + 16 lowercase hex digits.
std::string format_fingerprint(uint64_t fingerprint);

// The inverse of format_fingerprint: exactly "0x" + 16 lowercase hex digits,
// anything else is nullopt.
std::optional<uint64_t> parse_fingerprint(std::string_view text);

}  // namespace gossip::core
