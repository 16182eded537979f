#include "util/time_format.h"

#include <cstdio>
#include <ctime>

namespace replite {

std::string FormatUtcMs(int64_t ms) {
  int64_t frac = ms % 1000;  // floored, so that times before 1970 print right
  if (frac < 0) frac += 1000;
  std::time_t t = static_cast<std::time_t>((ms - frac) / 1000);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(frac));
  return out;
}

}  // namespace replite
