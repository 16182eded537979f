// UTC time formatting shared by error messages and the public restore API.
#pragma once

#include <cstdint>
#include <string>

namespace replite {

// RFC 3339 UTC with milliseconds: "2026-11-26T21:00:00.000Z" (ms since the
// Unix epoch; times before 1970 print right).
std::string FormatUtcMs(int64_t ms);

}  // namespace replite
