#include "replica/recent_objects.h"

namespace replite {

namespace {
int64_t SteadyUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void RecentObjects::Keep(const std::string& key, const std::string& bytes) {
  if (bytes.size() > max_object_ || bytes.size() > budget_) return;
  MutexLock l(mu_);
  auto [it, fresh] = objects_.try_emplace(key);
  if (!fresh) bytes_ -= it->second.size();
  it->second = bytes;
  bytes_ += bytes.size();
  if (fresh) order_.push_back({key, SteadyUs()});
  // Keys already taken are dropped once they make up most of the queue.
  if (order_.size() > 2 * objects_.size() + 16) {
    std::deque<Entry> live;
    for (auto& e : order_)
      if (objects_.count(e.key)) live.push_back(std::move(e));
    order_.swap(live);
  }
  // Over the budget, the oldest go first.
  while (bytes_ > budget_ && !order_.empty()) {
    auto old = objects_.find(order_.front().key);
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

void RecentObjects::Expire(int64_t max_age_us) {
  const int64_t cut = SteadyUs() - max_age_us;
  MutexLock l(mu_);
  while (!order_.empty() && order_.front().kept_us < cut) {
    auto old = objects_.find(order_.front().key);
    if (old != objects_.end()) {
      bytes_ -= old->second.size();
      objects_.erase(old);
    }
    order_.pop_front();
  }
}

}  // namespace replite
