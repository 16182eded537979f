#include "replica/recent_objects.h"

namespace replite {

void RecentObjects::Keep(const std::string& key, const std::string& bytes) {
  if (bytes.size() > max_object_ || bytes.size() > budget_) return;
  MutexLock l(mu_);
  auto [it, fresh] = objects_.try_emplace(key);
  if (!fresh) bytes_ -= it->second.size();
  it->second = bytes;
  bytes_ += bytes.size();
  if (fresh) order_.push_back(key);
  // Keys already taken are dropped once they make up most of the queue.
  if (order_.size() > 2 * objects_.size() + 16) {
    std::deque<std::string> live;
    for (auto& k : order_)
      if (objects_.count(k)) live.push_back(std::move(k));
    order_.swap(live);
  }
  // Over the budget, the oldest go first.
  while (bytes_ > budget_ && !order_.empty()) {
    auto old = objects_.find(order_.front());
    if (old != objects_.end()) {
      bytes_ -= old->second.size();
      objects_.erase(old);
    }
    order_.pop_front();
  }
}

bool RecentObjects::Take(const std::string& key, std::string* out) {
  MutexLock l(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return false;
  bytes_ -= it->second.size();
  *out = std::move(it->second);
  objects_.erase(it);
  return true;
}

uint64_t RecentObjects::bytes() const {
  MutexLock l(mu_);
  return bytes_;
}

}  // namespace replite
