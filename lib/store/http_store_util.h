// Small pieces every HTTP store backend (s3, abs) needs alike when it reads
// its replica URL and the service's responses: the endpoint's parts, the
// multipart size parameters, HTTP dates. Written once so the backends
// cannot drift apart.
//
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>

#include "replite/status.h"
#include "store/replica_url.h"

namespace replite {

// The value of a replica URL's query parameter, "" if absent.
std::string UrlParam(const ReplicaUrl& url, const char* name);

// An endpoint= value split up: "https://h.example:8443/base/" gives scheme
// "https", authority "h.example:8443", host "h.example", path "/base" (no
// trailing '/'; "" when there is none). Scheme-less values mean https.
struct Endpoint {
  std::string scheme;
  std::string authority;
  std::string host;
  std::string path;
};
Status ParseEndpoint(const std::string& value, Endpoint* out);

// localhost, an IPv4 address or a bracketed IPv6 address: an emulator or a
// test server, addressed path style.
bool IsIpOrLocalhost(const std::string& host);

// A replica URL's multipart size: bytes, or a number with a K, M or G
// suffix (powers of 1024), from S3's 5 MiB minimum part to its 5 GiB
// maximum. Empty: *out keeps the configured value.
Status SizeParam(const char* name, const std::string& v, uint64_t* out);

// "Sun, 06 Nov 1994 08:49:37 GMT" → ms since the epoch; 0 if unparsable.
int64_t ParseHttpDateMs(const std::string& s);
// The RFC 1123 form of a time in microseconds since the epoch (x-ms-date).
std::string HttpDate(int64_t unix_micros);

}  // namespace replite
