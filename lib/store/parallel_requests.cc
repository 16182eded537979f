#include "store/parallel_requests.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "store/counting_store.h"
#include "util/thread_annotations.h"

namespace replite {

Status ForEachParallel(size_t n, size_t threads, const std::function<Status(size_t i)>& fn) {
  std::atomic<size_t> next{0};
  Mutex mu;
  Status first;
  const std::string* group = ScopedMetricsGroup::Current();
  auto work = [&] {
    ScopedMetricsGroup scope(group);
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      Status s = fn(i);
      if (s.ok()) continue;
      next = n;
      MutexLock l(mu);
      if (first.ok()) first = s;
    }
  };
  std::vector<std::thread> started;
  for (size_t t = 1; t < std::min(threads, n); t++) started.emplace_back(work);
  work();
  for (auto& t : started) t.join();
  MutexLock l(mu);
  return first;
}

}  // namespace replite
