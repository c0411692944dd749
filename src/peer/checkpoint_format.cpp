// The checkpoint file format: encoding, verification and file names. Every
// check that can fail on a damaged file runs before anything is trusted: the
// magic, the version and the header length bound the parse, the announced
// sizes must account for every byte, and the CRC-32 covers all of it.
#include <zlib.h>

#include <bit>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gossip/core/fingerprint.hpp"
#include "gossip/core/finite.hpp"
#include "gossip/peer/checkpoint.hpp"

namespace gossip::peer {
namespace {

namespace fs = std::filesystem;

constexpr size_t kPrefix = 16;  // magic + version + header length
constexpr size_t kTrailer = 4;  // CRC-32

// Writes into a buffer sized up front (one allocation, no reallocation).
struct Writer {
  uint8_t* p;
  void bytes(const void* src, size_t n) {
    if (n) std::memcpy(p, src, n);
    p += n;
  }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) *p++ = static_cast<uint8_t>(v >> (8 * i));
  }
  void floats(std::span<const float> values) {
    if constexpr (std::endian::native == std::endian::little) {
      bytes(values.data(), values.size() * 4);
    } else {
      for (float v : values) u32(std::bit_cast<uint32_t>(v));
    }
  }
};

uint32_t get_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

std::vector<float> get_floats(const uint8_t* p, size_t count) {
  std::vector<float> values(count);
  if constexpr (std::endian::native == std::endian::little) {
    if (count) std::memcpy(values.data(), p, count * 4);
  } else {
    for (size_t i = 0; i < count; ++i) values[i] = std::bit_cast<float>(get_u32(p + 4 * i));
  }
  return values;
}

uint32_t crc32_of(const uint8_t* p, size_t n) {
  return static_cast<uint32_t>(::crc32_z(::crc32_z(0L, Z_NULL, 0), p, n));
}

// A non-negative integer field of the header, or -1 when absent or invalid.
int64_t get_count(const nlohmann::json& h, const char* key) {
  if (!h.is_object()) return -1;
  auto it = h.find(key);
  if (it == h.end() || !it->is_number_integer()) return -1;
  const int64_t v = it->get<int64_t>();
  return v < 0 ? -1 : v;
}

}  // namespace

std::vector<uint8_t> encode_checkpoint(const CheckpointState& s) {
  nlohmann::json header = {
      {"format", "gossip-train checkpoint"},
      {"step", s.step},
      {"epoch", s.data.epoch},
      {"position", s.data.position},
      {"optimizer_steps", s.optimizer_steps},
      {"weight", s.weight},
      {"fingerprint", core::format_fingerprint(s.fingerprint)},
      {"model", s.model},
      {"model_spec", s.model_spec},
      {"param_count", s.params.size()},
      {"state_count", s.optimizer_state.size()},
  };
  const size_t outer_count = s.outer.phi.size() + s.outer.v.size();
  if (outer_count) header["outer_count"] = outer_count;
  const std::string text = header.dump();
  std::vector<uint8_t> out(kPrefix + text.size() +
                           4 * (s.params.size() + s.optimizer_state.size() + outer_count) +
                           kTrailer);
  Writer w{out.data()};
  w.bytes(kCheckpointMagic, sizeof kCheckpointMagic);
  w.u32(kCheckpointVersion);
  w.u32(static_cast<uint32_t>(text.size()));
  w.bytes(text.data(), text.size());
  w.floats(s.params);
  w.floats(s.optimizer_state);
  w.floats(s.outer.phi);
  w.floats(s.outer.v);
  w.u32(crc32_of(out.data(), out.size() - kTrailer));
  return out;
}

core::Result<CheckpointState> decode_checkpoint(std::span<const uint8_t> bytes,
                                                const CheckpointExpect* expect) {
  const size_t n = bytes.size();
  const uint8_t* p = bytes.data();
  if (n < kPrefix + kTrailer) {
    return core::corrupt("truncated: " + std::to_string(n) + " bytes, shorter than any checkpoint");
  }
  if (std::memcmp(p, kCheckpointMagic, sizeof kCheckpointMagic) != 0) {
    return core::corrupt("not a gossip-train checkpoint (wrong magic)");
  }
  const uint32_t version = get_u32(p + 8);
  if (version != kCheckpointVersion) {
    return core::corrupt("unsupported checkpoint format version " + std::to_string(version) +
                         " (this build reads version " + std::to_string(kCheckpointVersion) + ")");
  }
  const uint32_t header_len = get_u32(p + 12);
  if (header_len > kCheckpointMaxHeader || kPrefix + header_len + kTrailer > n) {
    return core::corrupt("header length " + std::to_string(header_len) +
                         " does not fit the file (" + std::to_string(n) +
                         " bytes): truncated or damaged");
  }
  // Parse without exceptions: a damaged header is an answer, not a crash.
  const auto header = nlohmann::json::parse(p + kPrefix, p + kPrefix + header_len, nullptr,
                                            /*allow_exceptions=*/false);
  const int64_t params = get_count(header, "param_count");
  const int64_t states = get_count(header, "state_count");
  // Optional (outer mode only): phi and v, each param_count floats.
  const int64_t outers =
      header.is_object() && header.contains("outer_count") ? get_count(header, "outer_count") : 0;
  const uint32_t stored_crc = get_u32(p + n - kTrailer);
  const uint32_t actual_crc = crc32_of(p, n - kTrailer);
  // Sizes from the header say what the file should have been; trusted only
  // once the CRC matches, used before that to tell truncation apart.
  size_t want = 0;  // 0: the header gives no plausible sizes
  const auto n_signed = static_cast<int64_t>(n);
  if (params >= 0 && states >= 0 && outers >= 0 && params <= n_signed && states <= n_signed &&
      outers <= n_signed) {
    want = kPrefix + header_len + 4 * static_cast<size_t>(params + states + outers) + kTrailer;
  }
  if (stored_crc != actual_crc) {
    if (want > n) {
      return core::corrupt("truncated: " + std::to_string(n) + " of " + std::to_string(want) +
                           " bytes");
    }
    char buf[96];
    std::snprintf(buf, sizeof buf, "checksum mismatch (stored %08x, computed %08x): damaged",
                  stored_crc, actual_crc);
    return core::corrupt(buf);
  }
  // The CRC matched, so anything wrong from here on was written that way.
  if (want == 0) {
    return core::corrupt(
        "header is not a checkpoint header (param_count/state_count missing or outer_count "
        "invalid)");
  }
  if (outers != 0 && outers != 2 * params) {
    return core::corrupt("header outer_count " + std::to_string(outers) +
                         " is neither 0 nor twice param_count " + std::to_string(params));
  }
  if (n != want) {
    return core::corrupt("header announces " + std::to_string(want) + " bytes, file has " +
                         std::to_string(n));
  }

  CheckpointState s;
  const int64_t step = get_count(header, "step");
  const int64_t epoch = get_count(header, "epoch");
  const int64_t position = get_count(header, "position");
  const int64_t opt_steps = get_count(header, "optimizer_steps");
  const auto weight = header.find("weight");
  const auto fp = header.find("fingerprint");
  const auto model = header.find("model");
  if (step < 0 || epoch < 0 || position < 0 || opt_steps < 0 || weight == header.end() ||
      !weight->is_number() || fp == header.end() || !fp->is_string() || model == header.end() ||
      !model->is_string()) {
    return core::corrupt("header misses a field or has a wrong type (" + header.dump() + ")");
  }
  const auto fingerprint = core::parse_fingerprint(fp->get<std::string>());
  if (!fingerprint) return core::corrupt("header fingerprint is not 0x + 16 hex digits");
  s.step = step;
  s.data = {epoch, position};
  s.optimizer_steps = opt_steps;
  s.weight = weight->get<double>();
  s.fingerprint = *fingerprint;
  s.model = model->get<std::string>();
  if (const auto spec = header.find("model_spec"); spec != header.end()) {
    if (!spec->is_object() && !spec->is_null()) {
      return core::corrupt("header model_spec is not an object");
    }
    s.model_spec = *spec;
  }

  if (expect) {
    if (s.fingerprint != expect->fingerprint) {
      return core::corrupt("written for model " + s.model + " (fingerprint " +
                           core::format_fingerprint(s.fingerprint) +
                           "), but this config's model is " + expect->model + " (fingerprint " +
                           core::format_fingerprint(expect->fingerprint) + ")");
    }
    if (static_cast<size_t>(params) != expect->param_count ||
        static_cast<size_t>(states) != expect->state_count) {
      return core::corrupt("holds " + std::to_string(params) + " parameters and " +
                           std::to_string(states) + " optimizer-state values, this model needs " +
                           std::to_string(expect->param_count) + " and " +
                           std::to_string(expect->state_count) + " (a different optimizer type?)");
    }
  }
  const uint8_t* data = p + kPrefix + header_len;
  s.params = get_floats(data, static_cast<size_t>(params));
  s.optimizer_state = get_floats(data + 4 * params, static_cast<size_t>(states));
  if (outers) {
    const uint8_t* outer = data + 4 * (params + states);
    s.outer.phi = get_floats(outer, static_cast<size_t>(params));
    s.outer.v = get_floats(outer + 4 * params, static_cast<size_t>(params));
  }
  if (core::first_non_finite(s.params) < s.params.size()) {
    return core::corrupt("parameters hold a non-finite value (the run had diverged)");
  }
  GOSSIP_RETURN_IF_ERROR(averaging::check_outer_state(s.outer, s.params.size()));
  return s;
}

core::Result<CheckpointState> read_checkpoint_file(const fs::path& file,
                                                   const CheckpointExpect* expect) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(file, ec)) return core::not_found(file.string() + ": no such file");
    return core::io_error(file.string() + ": cannot open: " + std::strerror(errno));
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  if (in.bad()) return core::io_error(file.string() + ": read failed: " + std::strerror(errno));
  auto state = decode_checkpoint(bytes, expect);
  if (!state) return state.status().with_context(file.string());
  return state;
}

std::string checkpoint_file_name(int64_t step) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "ckpt-%09" PRId64 ".bin", step);
  return buf;
}

std::optional<int64_t> checkpoint_step_from_name(const std::string& name) {
  constexpr std::string_view kPre = "ckpt-", kSuf = ".bin";
  if (name.size() < kPre.size() + 9 + kSuf.size() || !name.starts_with(kPre) ||
      !name.ends_with(kSuf)) {
    return std::nullopt;
  }
  const std::string digits = name.substr(kPre.size(), name.size() - kPre.size() - kSuf.size());
  if (digits.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace gossip::peer
