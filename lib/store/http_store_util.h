// Small pieces every HTTP store backend (s3, abs, gs) needs alike when it reads
// its replica URL and the service's responses: the endpoint's parts, the
// multipart size parameters, HTTP dates. Written once so the backends
// cannot drift apart.
//
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "http/http_client.h"
#include "replite/status.h"
#include "replite/sys/object_store.h"
#include "store/replica_url.h"

namespace replite {

// One request of an HTTP store, before its per-attempt authorization (a
// signature or token made again on each attempt: the date must be fresh).
struct HttpCall {
  std::string op;  // "PutObject", "PutBlob", ... for messages
  std::string method;
  std::string key;  // "" for bucket- or container-level requests
  std::vector<std::pair<std::string, std::string>> query;    // decoded names and values
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  const std::string* body = nullptr;
  std::string file;  // body streamed from [file_off, file_off + file_len)
  uint64_t file_off = 0, file_len = 0;
  bool error_body_on_200 = false;  // a multipart completion may fail with 200

  uint64_t BodySize() const { return body ? body->size() : file.empty() ? 0 : file_len; }
};

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

// The size of a local file (PutFile), or an error naming it.
Status LocalFileSize(const std::string& path, uint64_t* size);

// If-None-Match: * / If-Match: ETAG for a conditional put (S3 and Azure
// spell them alike), appended to lower-case `headers`.
void AddPutConditions(const PutOptions& opts, std::vector<std::pair<std::string, std::string>>* headers);

// A ranged read: the "bytes=A-B" value of a Range (or x-ms-range) header,
// "" for a whole-object read; then the body cut to what was asked when the
// server ignored the range (200) or the range began past the end (416).
std::string RangeValue(uint64_t offset, uint64_t length);
void TakeRange(HttpResponse* r, uint64_t offset, uint64_t length, std::string* out);

// ObjectInfo from a HEAD response's Content-Length, ETag, Last-Modified.
void InfoFromHeaders(const std::string& key, const HttpResponse& r, ObjectInfo* out);

// msg with every occurrence of each secret (4 characters or more) replaced
// by "[redacted]".
std::string RedactSecrets(std::string msg, std::initializer_list<const std::string*> secrets);

// "Sun, 06 Nov 1994 08:49:37 GMT" → ms since the epoch; 0 if unparsable.
int64_t ParseHttpDateMs(const std::string& s);
// The RFC 1123 form of a time in microseconds since the epoch (x-ms-date).
std::string HttpDate(int64_t unix_micros);

}  // namespace replite
