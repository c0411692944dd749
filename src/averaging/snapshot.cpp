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
#include <cmath>

#include "core.hpp"

namespace gossip::averaging::detail {

void take_snapshot(train::Backend& backend, Exchange& ex) {
  if (const auto host = backend.host_parameters(); !host.empty()) {
    ex.path = ParamPath::kInPlace;
    encode(ex.layout, host, ex.own_wire(), rounding_seed(ex.xid(), ex.initiator()));
    return;
  }
  ex.path = ParamPath::kStaged;
  ex.stage_values();
  encode(ex.layout, backend.snapshot(), ex.own_wire(), rounding_seed(ex.xid(), ex.initiator()),
         ex.format() == WireFormat::kFp32 ? std::span<float>() : ex.own_values());
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

}  // namespace gossip::averaging::detail
