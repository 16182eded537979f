// Umbrella header for the C++ API.
#pragma once

#include "replite/options.h"
#include "replite/replicator.h"
#include "replite/restore.h"
#include "replite/status.h"

namespace replite {
// The library version, "MAJOR.MINOR.PATCH".
REPLITE_EXPORT const char* Version();
}  // namespace replite
