// Snapshot and apply: the one place that decides how averaging reads this
// peer's parameters and applies a delta to them (ParamPath in core.hpp).
//
// The decision is made once per exchange, in take_snapshot(), from the one
// question the Backend answers: does it expose its live parameters in host
// memory (Backend::host_parameters(), the CPU backend)? If so the in-place
// path quantizes straight from them and later applies from the two wire blobs
// in one pass, without staging copies: at 25M parameters a staging copy costs
// about as much as the pass itself. Otherwise (CUDA) the staged path goes
// through Backend::snapshot() and Backend::apply_delta(). Both compute the
// same x += scale * (dq(s_other) - dq(s_own)).
#include <algorithm>
#include <cmath>

#include "core.hpp"

namespace gossip::averaging::detail {

namespace {
// Outer mode keeps the exact parameters the snapshot was taken from.
void keep_exact(Exchange& ex, std::span<const float> params) {
  if (!ex.outer) return;
  ex.buf->own_exact.resize(params.size());
  std::copy(params.begin(), params.end(), ex.own_exact().begin());
}
}  // namespace

void take_snapshot(train::Backend& backend, Exchange& ex) {
  if (const auto host = backend.host_parameters(); !host.empty()) {
    ex.path = ParamPath::kInPlace;
    encode(ex.layout, host, ex.own_wire(), rounding_seed(ex.xid(), ex.initiator()));
    keep_exact(ex, host);
    return;
  }
  ex.path = ParamPath::kStaged;
  ex.stage_values();
  const auto params = backend.snapshot();
  encode(ex.layout, params, ex.own_wire(), rounding_seed(ex.xid(), ex.initiator()),
         ex.format() == WireFormat::kFp32 ? std::span<float>() : ex.own_values());
  keep_exact(ex, params);
}

void prepare_apply(Exchange& ex) {
  // The in-place path dequantizes and takes the norm inside its apply pass.
  if (ex.path != ParamPath::kStaged) return;
  if (ex.format() != WireFormat::kFp32) decode(ex.layout, ex.other_wire(), ex.other_values());
  ex.delta_sq = squared_distance(ex.other_values(), ex.own_values());
}

double apply_delta(train::Backend& backend, Exchange& ex) {
  const float scale = static_cast<float>(ex.machine.scale());
  if (ex.path == ParamPath::kInPlace) {
    // The host view is stable between steps, and take_snapshot() saw it.
    ex.delta_sq = apply_wire_delta(ex.layout, scale, ex.other_wire(), ex.own_wire(),
                                   backend.host_parameters());
  } else {
    backend.apply_delta(scale, ex.other_values(), ex.own_values());
  }
  return scale * std::sqrt(ex.delta_sq);
}

double apply_outer(train::Backend& backend, Exchange& ex, OuterState& outer,
                   const OuterOptions& options, std::vector<float>& target) {
  const float scale = static_cast<float>(ex.machine.scale());
  const std::span<const float> s = ex.own_exact();
  // m = s + scale * (dq(other) - dq(own)): the params mode's delta, from the
  // same decoded numbers as the partner's, onto the exact own parameters.
  target.assign(s.begin(), s.end());
  if (ex.path == ParamPath::kInPlace) {
    ex.delta_sq = apply_wire_delta(ex.layout, scale, ex.other_wire(), ex.own_wire(), target);
  } else {
    const auto as_bytes = [](std::span<float> f) {
      return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(f.data()),
                                      f.size() * sizeof(float));
    };
    apply_wire_delta(WireFormat::kFp32, scale, as_bytes(ex.other_values()),
                     as_bytes(ex.own_values()), target);
  }
  outer_step(options, outer.phi, outer.v, target);
  // theta += phi' - s: the inner steps taken since the snapshot stay.
  backend.apply_delta(1.0f, outer.phi, s);
  return std::sqrt(squared_distance(outer.phi, s));
}

}  // namespace gossip::averaging::detail
