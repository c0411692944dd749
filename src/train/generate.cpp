// generate_text: sampling from the CPU GPT (see generate.hpp).
#include "gossip/train/generate.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "gossip/core/hash.hpp"
#include "gossip/train/gpt_cpu.hpp"

namespace gossip::train {

core::Result<std::string> generate_text(const GptSpec& spec, std::span<const float> params,
                                        const std::string& prompt, int count,
                                        const SamplingOptions& options) {
  if (!(options.temperature > 0.0) || !std::isfinite(options.temperature)) {
    return core::invalid_argument("temperature: must be a number > 0");
  }
  if (options.top_k < 0 || options.top_k > spec.vocab) {
    return core::invalid_argument("top-k: must be in [0, " + std::to_string(spec.vocab) + "]");
  }
  if (count < 0) return core::invalid_argument("bytes: must be >= 0");
  if (params.size() != spec.param_count()) {
    return core::invalid_argument("parameters: " + std::to_string(params.size()) +
                                  " floats, the model needs " + std::to_string(spec.param_count()));
  }
  cpu::GptModel<float> model(spec, 1);
  std::string text = prompt.empty() ? std::string("\n") : prompt;
  core::SplitMix64 rng(options.seed);
  std::vector<int32_t> context;
  std::vector<double> probs(static_cast<size_t>(spec.vocab));
  std::vector<int> order(static_cast<size_t>(spec.vocab));
  for (int i = 0; i < count; ++i) {
    const size_t start = text.size() > size_t(spec.block) ? text.size() - size_t(spec.block) : 0;
    context.assign(text.begin() + static_cast<long>(start), text.end());
    for (auto& c : context) c = static_cast<uint8_t>(c);
    const int n = static_cast<int>(context.size());
    model.forward(params.data(), context.data(), nullptr, 1, n, false);
    const float* logits = model.logits() + static_cast<size_t>(n - 1) * spec.vocab;
    // Softmax of logits / temperature over the top k bytes (all when k = 0).
    std::iota(order.begin(), order.end(), 0);
    const int k = options.top_k == 0 ? spec.vocab : options.top_k;
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    const double top = logits[order[0]];
    double sum = 0.0;
    for (int j = 0; j < k; ++j) {
      probs[size_t(j)] = std::exp((logits[order[size_t(j)]] - top) / options.temperature);
      sum += probs[size_t(j)];
    }
    double u = rng.next_unit() * sum;
    int pick = order[size_t(k - 1)];
    for (int j = 0; j < k; ++j) {
      u -= probs[size_t(j)];
      if (u < 0) {
        pick = order[size_t(j)];
        break;
      }
    }
    text.push_back(static_cast<char>(pick));
  }
  return text;
}

std::string to_valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    // Length of the sequence `b` starts, and the smallest code point it may
    // encode (anything smaller is an overlong form).
    size_t len = 0;
    uint32_t min = 0, cp = 0;
    if (b < 0x80) {
      len = 1, cp = b;
    } else if (b >= 0xC2 && b < 0xE0) {
      len = 2, min = 0x80, cp = b & 0x1F;
    } else if (b >= 0xE0 && b < 0xF0) {
      len = 3, min = 0x800, cp = b & 0x0F;
    } else if (b >= 0xF0 && b < 0xF5) {
      len = 4, min = 0x10000, cp = b & 0x07;
    }
    bool ok = len > 0 && i + len <= bytes.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto c = static_cast<unsigned char>(bytes[i + k]);
      ok = (c & 0xC0) == 0x80;
      cp = (cp << 6) | (c & 0x3F);
    }
    ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      out.append(bytes.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    }
  }
  return out;
}

}  // namespace gossip::train
