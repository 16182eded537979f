#include "store/http_store_util.h"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <ctime>

#include "util/file_util.h"

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


Status LocalFileSize(const std::string& path, uint64_t* size) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus("stat " + path, errno);
  *size = static_cast<uint64_t>(st.st_size);
  return Status::OK();
}

void AddPutConditions(const PutOptions& opts, std::vector<std::pair<std::string, std::string>>* headers) {
  if (opts.if_none_match) headers->emplace_back("if-none-match", "*");
  if (!opts.if_match.empty()) headers->emplace_back("if-match", opts.if_match);
}

std::string RangeValue(uint64_t offset, uint64_t length) {
  if (offset == 0 && length == UINT64_MAX) return "";
  std::string range = "bytes=" + std::to_string(offset) + "-";
  if (length != UINT64_MAX) range += std::to_string(offset + length - 1);
  return range;
}

void TakeRange(HttpResponse* r, uint64_t offset, uint64_t length, std::string* out) {
  out->clear();
  if (r->status == 416) return;  // the range starts past the end: no bytes
  *out = std::move(r->body);
  const bool ranged = offset > 0 || length != UINT64_MAX;
  if (ranged && r->status == 200) {
    // The server ignored the range and sent the whole object: cut it here.
    *out = offset >= out->size() ? std::string()
                                 : out->substr(offset, length == UINT64_MAX ? std::string::npos : length);
  }
}

void InfoFromHeaders(const std::string& key, const HttpResponse& r, ObjectInfo* out) {
  *out = ObjectInfo();
  out->key = key;
  out->size = std::strtoull(r.Header("content-length").c_str(), nullptr, 10);
  out->etag = r.Header("etag");
  out->mtime_ms = ParseHttpDateMs(r.Header("last-modified"));
}

std::string RedactSecrets(std::string msg, std::initializer_list<const std::string*> secrets) {
  for (const std::string* secret : secrets) {
    if (secret->size() < 4) continue;
    for (size_t p; (p = msg.find(*secret)) != std::string::npos;) msg.replace(p, secret->size(), "[redacted]");
  }
  return msg;
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
