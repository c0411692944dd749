// Optimizer: the host (CPU) implementation of the update rules documented in
// optimizer.hpp, one class per "type", picked by make_optimizer().
//
// The CPU backend applies it to its flat buffers after each backward pass; the
// CUDA backend implements the same rules as kernels and is checked against
// these classes by the parity tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "gossip/core/status.hpp"
#include "gossip/train/model.hpp"
#include "gossip/train/optimizer.hpp"

namespace gossip::train {

class Optimizer {
 public:
  explicit Optimizer(const OptimizerSpec& spec) : spec_(spec) {}
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  const OptimizerSpec& spec() const { return spec_; }

  // One update of `params` in place from the gradient `grads` of the mean
  // batch loss, with learning rate `lr` and 1-based optimizer step `t`;
  // weight decay on every parameter (the backends use the overload below
  // with the model's decay_parts()). Requires grads.size() == params.size()
  // and state.size() == spec().state_count(params.size()). One pass over
  // memory. Not thread-safe on the same buffers; otherwise stateless.
  void update(std::span<float> params, std::span<const float> grads, std::span<float> state,
              float lr, int64_t t) const;

  // A part of the flat buffer that is decayed or not
  // (ModelSpec::decay_parts(): matrices and embeddings decay, biases and
  // LayerNorms do not).
  using Part = DecayPart;
  // As update(), with weight decay only on the parts marked so; `parts`
  // must tile the buffer. The state keeps the whole-buffer layout.
  void update(std::span<float> params, std::span<const float> grads, std::span<float> state,
              float lr, int64_t t, std::span<const Part> parts) const;

 protected:
  // The rule on n elements: x, g, and the state's first and second buffers
  // (sgd: s1 = velocity or null; adam: s1 = m, s2 = v), with decay `wd`.
  virtual void step(float* x, const float* g, float* s1, float* s2, size_t n, float lr, int64_t t,
                    float wd) const = 0;

 private:
  OptimizerSpec spec_;
};

// Builds the optimizer for spec.kind after spec.validate(); the error names
// the bad field.
core::Result<std::unique_ptr<Optimizer>> make_optimizer(const OptimizerSpec& spec);

}  // namespace gossip::train
