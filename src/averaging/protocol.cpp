// JSON bodies of the averaging frames (see protocol.hpp), with validation of
// every field that arrives from the network.
#include "gossip/averaging/protocol.hpp"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "gossip/core/fingerprint.hpp"
#include "gossip/net/frames.hpp"

namespace gossip::averaging {

namespace {

using Json = nlohmann::json;
constexpr uint64_t kMaxXid = (uint64_t{1} << 53) - 1;

std::vector<uint8_t> dump(const Json& j) {
  const std::string s = j.dump();
  return {s.begin(), s.end()};
}

// Field readers: each throws std::runtime_error with the field name; the
// parse_* functions turn that into a kProtocol Status.
struct Reader {
  const Json& j;
  const char* what;
  [[noreturn]] void bad(const char* key, const char* why) const {
    throw std::runtime_error(std::string(what) + ": field '" + key + "' " + why);
  }
  const Json& at(const char* key) const {
    auto it = j.find(key);
    if (it == j.end()) bad(key, "is missing");
    return *it;
  }
  uint64_t u64(const char* key, uint64_t max = kMaxXid) const {
    const Json& v = at(key);
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
      bad(key, "must be a non-negative integer");
    }
    const uint64_t x = v.get<uint64_t>();
    if (x > max) bad(key, "is out of range");
    return x;
  }
  int64_t i64(const char* key) const {
    const Json& v = at(key);
    if (!v.is_number_integer()) bad(key, "must be an integer");
    return v.get<int64_t>();
  }
  double weight(const char* key) const {
    const Json& v = at(key);
    if (!v.is_number()) bad(key, "must be a number");
    const double w = v.get<double>();
    if (!std::isfinite(w) || w <= 0) bad(key, "must be finite and > 0");
    return w;
  }
  std::string str(const char* key, size_t max_len = 256) const {
    const Json& v = at(key);
    if (!v.is_string()) bad(key, "must be a string");
    std::string s = v.get<std::string>();
    if (s.size() > max_len) bad(key, "is too long");
    return s;
  }
  // gossip.mode; absent (older peers) reads as params.
  GossipMode mode() const {
    if (!j.contains("mode")) return GossipMode::kParams;
    const auto m = parse_gossip_mode(str("mode", 32));
    if (!m) bad("mode", "must be \"params\" or \"outer\"");
    return *m;
  }
};

template <typename T, typename F>
core::Result<T> parse(std::span<const uint8_t> body, const char* what, F&& fill) {
  Json j = Json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return core::protocol_error(std::string(what) + ": body is not a JSON object");
  }
  try {
    T out;
    fill(Reader{j, what}, out);
    return out;
  } catch (const std::exception& e) {
    return core::protocol_error(e.what());
  }
}

}  // namespace

// The wire form: core's fingerprint text without its "0x" (protocol v1
// compares these 16 digits as a string).
std::string fingerprint_hex(uint64_t fingerprint) {
  return core::format_fingerprint(fingerprint).substr(2);
}

const char* refuse_code_name(RefuseCode code) {
  switch (code) {
    case RefuseCode::kModelMismatch:
      return "model_mismatch";
    case RefuseCode::kSizeMismatch:
      return "size_mismatch";
    case RefuseCode::kBadSnapshot:
      return "bad_snapshot";
    case RefuseCode::kTimeout:
      return "timeout";
    case RefuseCode::kAborted:
      return "aborted";
    case RefuseCode::kModeMismatch:
      return "mode_mismatch";
    case RefuseCode::kBadOffer:
      return "bad_offer";
    case RefuseCode::kUnspecified:
      break;
  }
  return "unspecified";
}

std::vector<uint8_t> encode(const Offer& m) {
  Json j = {{"xid", m.xid},       {"step", m.step},
            {"weight", m.weight}, {"format", wire_format_name(m.codec.format)},
            {"count", m.count},   {"fingerprint", m.fingerprint}};
  if (has_blocks(m.codec.format)) {
    j["block"] = m.codec.block;
  }
  if (m.codec.format == WireFormat::kRandK) j["fraction"] = m.codec.fraction;
  // Params mode sends the frame older peers know, byte for byte.
  if (m.mode != GossipMode::kParams) {
    j["mode"] = gossip_mode_name(m.mode);
    j["outer_steps"] = m.outer_steps;
  }
  return dump(j);
}
std::vector<uint8_t> encode(const Reply& m) {
  return dump({{"xid", m.xid}, {"weight", m.weight}});
}
std::vector<uint8_t> encode(const Refuse& m) {
  return dump({{"xid", m.xid},
               {"code", static_cast<uint16_t>(m.code)},
               {"reason", m.reason.substr(0, 1024)}});
}
std::vector<uint8_t> encode(const StateRequest& m) {
  Json j = {{"xid", m.xid},
            {"fingerprint", m.fingerprint},
            {"param_count", m.param_count},
            {"state_count", m.state_count}};
  if (m.mode != GossipMode::kParams) {
    j["mode"] = gossip_mode_name(m.mode);
    j["outer_count"] = m.outer_count;
  }
  return dump(j);
}
std::vector<uint8_t> encode(const StateInfo& m) {
  Json j = {{"xid", m.xid},
            {"step", m.step},
            {"optimizer_steps", m.optimizer_steps},
            {"param_count", m.param_count},
            {"state_count", m.state_count},
            {"fingerprint", m.fingerprint}};
  if (m.outer_count) j["outer_count"] = m.outer_count;
  return dump(j);
}
std::vector<uint8_t> encode_xid(uint64_t xid) {
  return dump({{"xid", xid}});
}

core::Result<Offer> parse_offer(std::span<const uint8_t> body) {
  return parse<Offer>(body, "OFFER", [](const Reader& r, Offer& m) {
    m.xid = r.u64("xid");
    m.step = r.i64("step");
    m.weight = r.weight("weight");
    auto f = parse_wire_format(r.str("format"));
    if (!f) r.bad("format", "must be \"fp32\", \"bf16\", \"fp16\", \"int8\" or \"randk\"");
    m.codec.format = *f;
    // Block codecs carry their parameters: a peer must never guess them. check_codec is the
    // one place that knows their ranges, for config and wire alike.
    if (has_blocks(*f)) m.codec.block = static_cast<uint32_t>(r.u64("block", kMaxBlock));
    if (*f == WireFormat::kRandK) {
      const Json& v = r.at("fraction");
      if (!v.is_number()) r.bad("fraction", "must be a number");
      m.codec.fraction = v.get<double>();
    }
    if (auto st = check_codec(m.codec); !st) throw std::runtime_error("OFFER: " + st.message());
    m.count = r.u64("count", ~uint64_t{0});
    m.fingerprint = r.str("fingerprint", 64);
    m.mode = r.mode();
    if (r.j.contains("outer_steps")) m.outer_steps = static_cast<int64_t>(r.u64("outer_steps"));
  });
}

core::Result<Reply> parse_reply(std::span<const uint8_t> body) {
  return parse<Reply>(body, "REPLY", [](const Reader& r, Reply& m) {
    m.xid = r.u64("xid");
    m.weight = r.weight("weight");
  });
}

core::Result<Refuse> parse_refuse(std::span<const uint8_t> body) {
  return parse<Refuse>(body, "REFUSE", [](const Reader& r, Refuse& m) {
    m.xid = r.u64("xid");
    m.reason = r.str("reason", 4096);
    // Optional: peers from before the code field send none (unspecified).
    // Codes this peer does not know read as unspecified too.
    if (r.j.contains("code")) {
      const uint64_t code = r.u64("code", 0xffff);
      m.code = code <= kMaxRefuseCode ? static_cast<RefuseCode>(code) : RefuseCode::kUnspecified;
    }
  });
}

core::Result<StateRequest> parse_state_request(std::span<const uint8_t> body) {
  return parse<StateRequest>(body, "STATE_REQ", [](const Reader& r, StateRequest& m) {
    m.xid = r.u64("xid");
    m.fingerprint = r.str("fingerprint", 64);
    m.param_count = r.u64("param_count", ~uint64_t{0});
    m.state_count = r.u64("state_count", ~uint64_t{0});
    m.mode = r.mode();
    if (r.j.contains("outer_count")) m.outer_count = r.u64("outer_count", ~uint64_t{0});
  });
}

core::Result<StateInfo> parse_state_info(std::span<const uint8_t> body) {
  return parse<StateInfo>(body, "STATE", [](const Reader& r, StateInfo& m) {
    m.xid = r.u64("xid");
    m.step = r.i64("step");
    m.optimizer_steps = r.i64("optimizer_steps");
    m.param_count = r.u64("param_count", ~uint64_t{0});
    m.state_count = r.u64("state_count", ~uint64_t{0});
    m.fingerprint = r.str("fingerprint", 64);
    if (r.j.contains("outer_count")) m.outer_count = r.u64("outer_count", ~uint64_t{0});
  });
}

core::Result<uint64_t> parse_xid(std::span<const uint8_t> body) {
  return parse<uint64_t>(body, "xid frame",
                         [](const Reader& r, uint64_t& xid) { xid = r.u64("xid"); });
}

std::array<uint8_t, kBlobHeaderBytes> blob_header(MessageType type, uint64_t xid) {
  std::array<uint8_t, kBlobHeaderBytes> h{};
  h[0] = type;
  net::put_be64(h.data() + 1, xid);
  return h;
}

core::Result<BlobTag> parse_blob_header(std::span<const uint8_t> header) {
  if (header.size() != kBlobHeaderBytes) {
    return core::protocol_error("averaging blob header of " + std::to_string(header.size()) +
                                " bytes (expected " + std::to_string(kBlobHeaderBytes) + ")");
  }
  return BlobTag{header[0], net::get_be64(header.data() + 1)};
}

}  // namespace gossip::averaging
