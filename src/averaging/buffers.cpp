// Snapshot buffers: grow-only float storage, the pool that recycles it, and
// an Exchange's views of its wire and dequantized arrays.
#include "core.hpp"

namespace gossip::averaging::detail {

void FloatStore::resize(size_t n) {
  if (n > capacity) {
    data = std::make_unique_for_overwrite<float[]>(n);
    capacity = n;
  }
  size = n;
}

std::unique_ptr<Buffers> BufferPool::take(size_t wire_bytes) {
  std::unique_ptr<Buffers> b;
  {
    std::lock_guard l(mu);
    if (!free.empty()) {
      b = std::move(free.back());
      free.pop_back();
    }
  }
  if (!b) b = std::make_unique<Buffers>();
  const size_t words = (wire_bytes + 3) / 4;
  b->own_store.resize(words);
  b->other_store.resize(words);
  b->own_f.resize(0);
  b->other_f.resize(0);
  b->own_exact.resize(0);
  return b;
}

void BufferPool::give(std::unique_ptr<Buffers> b) {
  std::lock_guard l(mu);
  if (free.size() < 2) free.push_back(std::move(b));
}

Exchange::Exchange(Strand strand, std::shared_ptr<BufferPool> p, const WireCodec& codec, size_t n,
                   ExchangeMachine m)
    : machine(m),
      layout(make_layout(codec, n, m.xid())),
      count(n),
      pool(std::move(p)),
      buf(pool->take(layout.bytes())),
      timer(strand),
      events(strand, 16) {}
Exchange::~Exchange() {
  pool->give(std::move(buf));
}

std::span<uint8_t> Exchange::own_wire() {
  return {reinterpret_cast<uint8_t*>(buf->own_store.get()), layout.bytes()};
}
std::span<uint8_t> Exchange::other_wire() {
  return {reinterpret_cast<uint8_t*>(buf->other_store.get()), layout.bytes()};
}
void Exchange::stage_values() {
  if (format() == WireFormat::kFp32) return;
  buf->own_f.resize(count);
  buf->other_f.resize(count);
}
std::span<float> Exchange::own_values() {
  return format() == WireFormat::kFp32 ? std::span<float>(buf->own_store.get(), count)
                                       : std::span<float>(buf->own_f.get(), buf->own_f.size);
}
std::span<float> Exchange::other_values() {
  return format() == WireFormat::kFp32 ? std::span<float>(buf->other_store.get(), count)
                                       : std::span<float>(buf->other_f.get(), buf->other_f.size);
}

std::span<float> Exchange::own_exact() {
  return {buf->own_exact.get(), buf->own_exact.size};
}

}  // namespace gossip::averaging::detail
