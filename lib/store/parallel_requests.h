// Store requests of one caller spread over a few threads: fn(i) for every
// i in [0, n), on up to `threads` threads (the caller's included), each
// counting its requests for the caller's metrics group (ScopedMetricsGroup).
// Once an fn fails no further i is started; the first failure is returned.
#pragma once

#include <cstddef>
#include <functional>

#include "replite/status.h"

namespace replite {

Status ForEachParallel(size_t n, size_t threads, const std::function<Status(size_t i)>& fn);

}  // namespace replite
