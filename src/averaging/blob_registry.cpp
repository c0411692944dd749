// BlobRegistry: the snapshot and state blobs this engine expects, by session
// and exchange id, until the partner's BLOB_BEGIN claims one.
#include "core.hpp"

namespace gossip::averaging::detail {

void BlobRegistry::expect(const net::Session* s, BlobSlot slot) {
  std::lock_guard l(mu_);
  expected_[{s, slot.xid}] = std::move(slot);
}

void BlobRegistry::unexpect(const net::Session* s, uint64_t xid) {
  std::lock_guard l(mu_);
  expected_.erase({s, xid});
}

void BlobRegistry::forget(const net::Session* s) {
  std::lock_guard l(mu_);
  for (auto it = expected_.begin(); it != expected_.end();) {
    it = it->first.first == s ? expected_.erase(it) : std::next(it);
  }
}

std::optional<BlobSlot> BlobRegistry::begin(const net::Session* s, uint64_t xid, uint8_t type) {
  std::lock_guard l(mu_);
  auto it = expected_.find({s, xid});
  if (it == expected_.end() || it->second.type != type) return std::nullopt;
  BlobSlot slot = std::move(it->second);
  expected_.erase(it);
  return slot;
}

}  // namespace gossip::averaging::detail
