// CountingStore: wraps an ObjectStore and counts every request in the
// Replicator's metrics by operation, result and the metrics group of the
// database the calling job works for (set with ScopedMetricsGroup). Series:
// operations (6) x results (a few codes) x groups, never per database.
//
// Thread-safety: as the wrapped store.
#pragma once

#include <memory>
#include <string>

#include "metrics/metrics.h"
#include "replite/sys/object_store.h"

namespace replite {

// Names the metrics group for store requests made by this thread until the
// object goes out of scope.
class ScopedMetricsGroup {
 public:
  explicit ScopedMetricsGroup(const std::string* group);
  ~ScopedMetricsGroup();
  // This thread's group (null: none), for threads started on its behalf.
  static const std::string* Current();

 private:
  const std::string* prev_;
};

void DeclareStoreMetrics(Metrics* m);
std::shared_ptr<ObjectStore> NewCountingStore(std::shared_ptr<ObjectStore> inner, Metrics* m);

}  // namespace replite
