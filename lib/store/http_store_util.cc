#include "store/http_store_util.h"

#include <cctype>
#include <ctime>

namespace replite {

std::string UrlParam(const ReplicaUrl& url, const char* name) {
  auto it = url.params.find(name);
  return it == url.params.end() ? std::string() : it->second;
}

Status ParseEndpoint(const std::string& value, Endpoint* out) {
  *out = Endpoint();
  std::string rest = value;
  out->scheme = "https";
  if (size_t p = rest.find("://"); p != std::string::npos) {
    out->scheme = rest.substr(0, p);
    rest = rest.substr(p + 3);
  }
  if (out->scheme != "http" && out->scheme != "https")
    return Status::InvalidArgument("endpoint '" + value + "': use http:// or https://");
  const size_t slash = rest.find('/');
  out->authority = rest.substr(0, slash);
  if (slash != std::string::npos) out->path = rest.substr(slash);
  while (!out->path.empty() && out->path.back() == '/') out->path.pop_back();
  if (out->authority.empty()) return Status::InvalidArgument("endpoint '" + value + "': no host");
  out->host = out->authority;
  if (out->host.front() == '[') {
    out->host = out->host.substr(0, out->host.find(']') + 1);
  } else if (size_t c = out->host.rfind(':'); c != std::string::npos) {
    out->host = out->host.substr(0, c);
  }
  return Status::OK();
}

bool IsIpOrLocalhost(const std::string& host) {
  if (host == "localhost" || host.front() == '[') return true;
  return host.find_first_not_of("0123456789.") == std::string::npos;
}

Status SizeParam(const char* name, const std::string& v, uint64_t* out) {
  if (v.empty()) return Status::OK();
  size_t digits = 0;
  while (digits < v.size() && digits < 12 && std::isdigit(static_cast<unsigned char>(v[digits]))) digits++;
  const std::string unit = v.substr(digits);
  const uint64_t shift = unit.empty() ? 0 : unit == "K" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : 64;
  const uint64_t n = digits ? std::stoull(v.substr(0, digits)) : 0;
  if (digits == 0 || shift == 64 || n > (5ull << 30) >> shift || (n << shift) < (5ull << 20) ||
      (n << shift) > (5ull << 30))
    return Status::InvalidArgument(std::string(name) + " must be a size from 5M to 5G (bytes, or with a K, M or G "
                                   "suffix), not '" + v + "'");
  *out = n << shift;
  return Status::OK();
}


int64_t ParseHttpDateMs(const std::string& s) {
  struct tm tm = {};
  if (!strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm)) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

std::string HttpDate(int64_t unix_micros) {
  time_t t = static_cast<time_t>(unix_micros / 1000000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

}  // namespace replite
