#include "config/value_parse.h"

#include <arpa/inet.h>

#include <cctype>
#include <limits>

#include "replite/restore.h"
#include "store/replica_url.h"

namespace replite::config {

std::string Quote(std::string_view v) { return "\"" + std::string(v) + "\""; }

Status BadValue(std::string_view name, std::string_view value, const std::string& form) {
  return Status::InvalidArgument("option " + Quote(name) + ": " + Quote(value) + " is not " + form);
}

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = uint64_t(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

Status ParseInt(std::string_view name, std::string_view v, int64_t min, int64_t max, int64_t* out) {
  uint64_t u = 0;
  bool neg = !v.empty() && v[0] == '-';
  const std::string form = "an integer in " + std::to_string(min) + ".." + std::to_string(max);
  if (!ParseU64(neg ? v.substr(1) : v, &u) || u > uint64_t(std::numeric_limits<int64_t>::max()))
    return BadValue(name, v, form);
  int64_t x = neg ? -int64_t(u) : int64_t(u);
  if (x < min || x > max) return BadValue(name, v, form);
  *out = x;
  return Status::OK();
}

Status ParseDuration(std::string_view name, std::string_view v, bool bare_ms, int64_t* ms) {
  const std::string form = bare_ms ? "a duration: milliseconds, or a number with a unit ms, s, m, h or d (e.g. 500, 90s)"
                                   : "a duration: a number with a unit ms, s, m, h or d (e.g. 90s, 24h)";
  size_t n = 0;
  while (n < v.size() && v[n] >= '0' && v[n] <= '9') n++;
  uint64_t num = 0;
  if (!ParseU64(v.substr(0, n), &num)) return BadValue(name, v, form);
  const std::string_view unit = v.substr(n);
  uint64_t mult;
  if ((unit.empty() && bare_ms) || unit == "ms") mult = 1;
  else if (unit == "s") mult = 1000;
  else if (unit == "m") mult = 60 * 1000;
  else if (unit == "h") mult = 3600 * 1000;
  else if (unit == "d") mult = 24 * 3600 * 1000;
  else return BadValue(name, v, form);
  // Ten years is far beyond any sensible interval and keeps ms math safe.
  constexpr uint64_t kMax = 10ull * 366 * 24 * 3600 * 1000;
  if (num > kMax / mult) return BadValue(name, v, form + ", at most 10 years");
  *ms = int64_t(num * mult);
  return Status::OK();
}

Status ParsePositiveDuration(std::string_view name, std::string_view v, bool bare_ms, int64_t* ms) {
  int64_t x = 0;
  Status s = ParseDuration(name, v, bare_ms, &x);
  if (!s.ok()) return s;
  if (x == 0) return BadValue(name, v, bare_ms ? "a positive duration (e.g. 1000 or 1s)" : "a positive duration (e.g. 24h)");
  *ms = x;
  return Status::OK();
}

Status ParseBytes(std::string_view name, std::string_view v, uint64_t* out) {
  const std::string form = "a byte count: a number with an optional K, M or G suffix (e.g. 256M)";
  size_t n = 0;
  while (n < v.size() && v[n] >= '0' && v[n] <= '9') n++;
  uint64_t num = 0;
  if (!ParseU64(v.substr(0, n), &num)) return BadValue(name, v, form);
  std::string unit(v.substr(n));
  for (auto& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  int shift = -1;
  if (unit.empty() || unit == "B") shift = 0;
  else if (unit == "K" || unit == "KB" || unit == "KIB") shift = 10;
  else if (unit == "M" || unit == "MB" || unit == "MIB") shift = 20;
  else if (unit == "G" || unit == "GB" || unit == "GIB") shift = 30;
  if (shift < 0 || num > (std::numeric_limits<uint64_t>::max() >> shift)) return BadValue(name, v, form);
  *out = num << shift;
  return Status::OK();
}

Status ParseBool(std::string_view name, std::string_view v, bool* out) {
  if (v == "1" || v == "true" || v == "yes" || v == "on") {
    *out = true;
  } else if (v == "0" || v == "false" || v == "no" || v == "off") {
    *out = false;
  } else {
    return BadValue(name, v, "a boolean: 0 or 1 (true/false, yes/no, on/off)");
  }
  return Status::OK();
}

Status ParsePath(std::string_view name, std::string_view v, std::string* out) {
  if (v.empty()) return BadValue(name, v, "a path: give a non-empty path, or leave the option out for its default");
  *out = std::string(v);
  return Status::OK();
}

Status ParseAddress(std::string_view name, std::string_view v, std::string* out) {
  const std::string form = "an address IPV4:PORT with a port in 1..65535 (e.g. 127.0.0.1:9090)";
  const size_t colon = v.rfind(':');
  if (colon == std::string_view::npos) return BadValue(name, v, form);
  std::string host(v.substr(0, colon));
  if (host.empty()) host = "127.0.0.1";
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) != 1) return BadValue(name, v, form);
  int64_t port = 0;
  if (!ParseInt(name, v.substr(colon + 1), 1, 65535, &port).ok()) return BadValue(name, v, form);
  *out = host + ":" + std::to_string(port);
  return Status::OK();
}

Status ParseTxid(std::string_view name, std::string_view v, uint64_t* out) {
  uint64_t t = 0;
  if (!ParseU64(v, &t) || t == 0) return BadValue(name, v, "a transaction id (a positive integer, e.g. 42)");
  *out = t;
  return Status::OK();
}

Status ParseTimestamp(std::string_view name, std::string_view v, int64_t* ms) {
  int64_t x = 0;
  Status s = ParseRfc3339(std::string(v), &x);
  if (!s.ok()) return BadValue(name, v, "an RFC 3339 UTC time (e.g. 2026-11-26T21:00:00Z): " + s.message());
  *ms = x;
  return Status::OK();
}

Status CheckReplicaUrl(std::string_view name, std::string_view v) {
  if (v.empty()) return Status::OK();  // unset: the default
  ReplicaUrl parsed;
  Status s = ParseReplicaUrl(std::string(v), &parsed);
  if (!s.ok()) return Status::InvalidArgument("option " + Quote(name) + ": " + s.message());
  return Status::OK();
}

}  // namespace replite::config
