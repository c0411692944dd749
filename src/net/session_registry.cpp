// SessionRegistry: weak references to a Node's sessions, by peer id once open.
#include "gossip/net/session_registry.hpp"

#include <algorithm>

namespace gossip::net {

bool SessionRegistry::track(const std::shared_ptr<Session>& session) {
  std::lock_guard l(mu_);
  if (closed_) return false;
  std::erase_if(all_, [](const auto& w) { return w.expired(); });
  all_.push_back(session);
  return true;
}

void SessionRegistry::opened(const std::shared_ptr<Session>& session) {
  std::lock_guard l(mu_);
  if (closed_) return;
  open_.emplace(session->peer_id(), session);
}

void SessionRegistry::closed(const Session* session) {
  std::lock_guard l(mu_);
  for (auto it = open_.begin(); it != open_.end();) {
    auto s = it->second.lock();
    it = (!s || s.get() == session) ? open_.erase(it) : std::next(it);
  }
}

std::shared_ptr<Session> SessionRegistry::find(std::string_view peer_id) const {
  std::lock_guard l(mu_);
  auto [lo, hi] = open_.equal_range(peer_id);
  for (auto it = lo; it != hi; ++it) {
    if (auto s = it->second.lock(); s && s->is_open()) return s;
  }
  return nullptr;
}

void SessionRegistry::close_all(const core::Status& reason) {
  std::vector<std::weak_ptr<Session>> all;
  {
    std::lock_guard l(mu_);
    if (closed_) return;
    closed_ = true;
    all.swap(all_);
    open_.clear();
  }
  for (auto& w : all) {
    if (auto s = w.lock()) s->close(reason);
  }
}

}  // namespace gossip::net
