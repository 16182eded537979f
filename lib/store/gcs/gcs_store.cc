#include "store/gcs/gcs_store.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <random>

#include "http/http_client.h"
#include "store/body_digest.h"
#include "store/gcs/gcs_xml.h"
#include "store/http_retry.h"
#include "store/http_store_util.h"
#include "store/s3/s3_xml.h"
#include "store/s3/sigv4.h"  // UriEncode

namespace replite {
namespace {

using s3::KeyValues;

constexpr const char* kWriteIdHeader = "x-goog-meta-replite-write-id";
constexpr const char* kGenerationHeader = "x-goog-generation";
constexpr uint64_t kMaxParts = 10000;

// One XML API request (built again, with a current token, per attempt).
using Call = HttpCall;

class GcsStore final : public ObjectStore {
 public:
  GcsStore(std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
           std::shared_ptr<gcs::GcsTokenSource> tokens, std::string bucket, std::string scheme_authority,
           std::string base_path, std::string ca_file, bool verify_tls)
      : http_(std::move(http)),
        env_(env),
        config_(config),
        tokens_(std::move(tokens)),
        bucket_(std::move(bucket)),
        scheme_authority_(std::move(scheme_authority)),
        base_path_(std::move(base_path)),
        ca_file_(std::move(ca_file)),
        verify_tls_(verify_tls),
        retry_(config),
        rng_(std::random_device{}()) {
    describe_ = "gs://" + bucket_ + " (endpoint " + scheme_authority_ + base_path_ + ", OAuth tokens from " +
                tokens_->Describe() + ")";
  }

  Status Put(const std::string& key, const std::string& data, const PutOptions& opts, std::string* etag) override {
    Call c = ObjectCall("PutObject", "PUT", key);
    c.headers.emplace_back("content-md5", ContentMd5(data));
    c.body = &data;
    return ConditionalWrite(c, opts, etag);
  }

  Status PutFile(const std::string& key, const std::string& local_path, const PutOptions& opts) override {
    uint64_t size = 0;
    Status s = LocalFileSize(local_path, &size);
    if (!s.ok()) return s;
    if (size > config_.multipart_threshold && size > config_.multipart_part_size)
      return PutMultipart(key, local_path, size, opts);
    std::string sha, md5;
    if (!(s = DigestFileRange(local_path, 0, size, &sha, &md5)).ok()) return s;
    Call c = ObjectCall("PutObject", "PUT", key);
    c.headers.emplace_back("content-md5", md5);
    c.file = local_path;
    c.file_len = size;
    return ConditionalWrite(c, opts, nullptr);
  }

  Status Get(const std::string& key, std::string* out, uint64_t offset, uint64_t length) override {
    out->clear();
    if (length == 0) {
      ObjectInfo info;
      return Head(key, &info);  // keeps the kNotFound contract for empty reads
    }
    Call c = ObjectCall("GetObject", "GET", key);
    const std::string range = RangeValue(offset, length);
    if (!range.empty()) c.headers.emplace_back("range", range);
    HttpResponse r;
    Status s = Do(c, &r, /*ok_416=*/true);
    if (s.ok()) TakeRange(&r, offset, length, out);
    return s;
  }

  Status Head(const std::string& key, ObjectInfo* out) override {
    HttpResponse r;
    Status s = Do(ObjectCall("HeadObject", "HEAD", key), &r);
    if (!s.ok()) return s;
    InfoFromHeaders(key, r, out);
    out->etag = r.Header(kGenerationHeader);
    return Status::OK();
  }

  Status List(const std::string& prefix, std::vector<ObjectInfo>* out) override {
    out->clear();
    std::string token;
    while (true) {
      Call c = ObjectCall("ListObjects", "GET", "");
      c.query = {{"list-type", "2"}};
      if (!prefix.empty()) c.query.emplace_back("prefix", prefix);
      if (config_.list_max_keys > 0) c.query.emplace_back("max-keys", std::to_string(config_.list_max_keys));
      if (!token.empty()) c.query.emplace_back("continuation-token", token);
      HttpResponse r;
      Status s = Do(c, &r);
      if (!s.ok()) return s;
      s3::ListPage page;
      if (!(s = gcs::ParseListPage(r.body, &page)).ok()) return s.Annotate(Where(c) + " prefix '" + prefix + "': ");
      for (auto& o : page.objects) out->push_back(std::move(o));
      if (!page.truncated) break;
      if (page.next_token == token)
        return Status::Corruption(Where(c) + ": the service repeated a continuation token");
      token = page.next_token;
    }
    std::sort(out->begin(), out->end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return Status::OK();
  }

  // One DELETE per key, up to 16 in flight through the shared pool; a key
  // that does not exist is not an error (a bucket that does not is).
  Status Delete(const std::vector<std::string>& keys) override {
    std::vector<Call> calls(keys.size());
    std::vector<std::string> bearers(keys.size());
    return retry_.RunConcurrent(
        http_.get(), keys.size(), std::min(16, std::max(1, config_.max_connections_per_host)),
        [&](size_t i, int attempt, HttpRequest* req) {
          if (attempt == 0) calls[i] = ObjectCall("DeleteObject", "DELETE", keys[i]);
          return BuildWithToken(calls[i], req, &bearers[i]);
        },
        [&](size_t i, const Status& t, const HttpResponse& r) {
          Status s = Classify(calls[i], bearers[i], t, r);
          return s.code() == Code::kNotFound && ErrorCode(r) != "NoSuchBucket" ? Status::OK() : s;
        },
        [](size_t, const HttpResponse&) {});
  }

  // Multipart uploads that writers killed mid-upload left under `prefix`
  // (their parts are billed until aborted), as the S3 store does it.
  Status RemoveAbandoned(const std::string& prefix, int64_t older_than_ms, uint64_t* removed) override {
    if (removed) *removed = 0;
    std::string key_marker, id_marker;
    while (true) {
      Call c = ObjectCall("ListMultipartUploads", "GET", "");
      c.query = {{"uploads", ""}, {"prefix", prefix}};
      if (config_.list_max_keys > 0 && config_.list_max_keys != 1000)
        c.query.emplace_back("max-uploads", std::to_string(config_.list_max_keys));
      if (!key_marker.empty()) c.query.emplace_back("key-marker", key_marker);
      if (!id_marker.empty()) c.query.emplace_back("upload-id-marker", id_marker);
      HttpResponse r;
      Status s = Do(c, &r);
      if (!s.ok()) return s;
      s3::UploadsPage page;
      if (!(s = s3::ParseListMultipartUploads(r.body, &page)).ok()) return s.Annotate(Where(c) + ": ");
      for (const auto& u : page.uploads) {
        if (u.initiated_ms == 0 || u.initiated_ms >= older_than_ms) continue;
        Call abort = ObjectCall("AbortMultipartUpload", "DELETE", u.key);
        abort.query = {{"uploadId", u.upload_id}};
        HttpResponse ar;
        s = Do(abort, &ar);
        if (s.code() == Code::kNotFound) continue;  // completed or aborted meanwhile
        if (!s.ok()) return s;
        if (removed) (*removed)++;
      }
      if (!page.truncated) return Status::OK();
      if (page.next_key_marker == key_marker && page.next_upload_id_marker == id_marker)
        return Status::Corruption(Where(c) + ": the listing does not advance");
      key_marker = page.next_key_marker;
      id_marker = page.next_upload_id_marker;
    }
  }

  std::string Describe() const override { return describe_; }

 private:
  Call ObjectCall(const char* op, const char* method, const std::string& key) const {
    Call c;
    c.op = op;
    c.method = method;
    c.key = key;
    return c;
  }

  std::string Where(const Call& c) const { return c.op + " gs://" + bucket_ + (c.key.empty() ? "" : "/" + c.key); }

  // x-goog-if-generation-match for a conditional put. False when the
  // condition cannot hold (an if_match that is no generation number).
  static bool AddConditions(const PutOptions& opts, Call* c) {
    if (opts.if_none_match) {
      c->headers.emplace_back("x-goog-if-generation-match", "0");
    } else if (!opts.if_match.empty()) {
      if (opts.if_match.find_first_not_of("0123456789") != std::string::npos) return false;
      c->headers.emplace_back("x-goog-if-generation-match", opts.if_match);
    }
    return true;
  }

  std::string NewWriteId() {
    std::lock_guard<std::mutex> l(rng_mu_);
    char buf[33];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng_()),
                  static_cast<unsigned long long>(rng_()));
    return buf;
  }

  // A put with its conditions: refused after a retry, the write may have
  // won on an attempt whose answer was lost (see the header).
  Status ConditionalWrite(Call& c, const PutOptions& opts, std::string* etag) {
    if (!AddConditions(opts, &c))
      return Status::FailedPrecondition(Where(c) + ": the version to replace ('" + opts.if_match +
                                        "') is not a GCS generation number, so it cannot be the live one");
    std::string write_id;
    if (opts.if_none_match || !opts.if_match.empty()) {
      write_id = NewWriteId();
      c.headers.emplace_back(kWriteIdHeader, write_id);
    }
    HttpResponse r;
    Status s = Do(c, &r);
    if (s.code() == Code::kFailedPrecondition && !write_id.empty()) return RecognizeOwnWrite(c.key, write_id, s, etag);
    if (s.ok() && etag) *etag = r.Header(kGenerationHeader);
    return s;
  }

  Status RecognizeOwnWrite(const std::string& key, const std::string& write_id, const Status& refused,
                           std::string* etag) {
    HttpResponse r;
    Status s = Do(ObjectCall("HeadObject", "HEAD", key), &r);
    if (!s.ok() || r.Header(kWriteIdHeader) != write_id) return refused;
    if (etag) *etag = r.Header(kGenerationHeader);
    return Status::OK();
  }

  void Build(const Call& c, const std::string& bearer, HttpRequest* req) const {
    std::string path = base_path_ + "/" + s3::UriEncode(bucket_, false);
    if (!c.key.empty()) path += "/" + s3::UriEncode(c.key, true);
    std::string query;
    for (const auto& [k, v] : c.query)
      query += (query.empty() ? "" : "&") + s3::UriEncode(k, false) + (v.empty() && k == "uploads" ? "" : "=" + s3::UriEncode(v, false));
    *req = HttpRequest();
    req->headers = c.headers;
    req->headers.emplace_back("authorization", "Bearer " + bearer);
    req->method = c.method;
    req->url = scheme_authority_ + path + (query.empty() ? "" : "?" + query);
    req->ca_file = ca_file_;
    req->verify_tls = verify_tls_;
    if (c.body) req->body_ptr = c.body;
    if (!c.file.empty()) {
      req->body_file = c.file;
      req->body_offset = c.file_off;
      req->body_length = c.file_len;
    }
  }

  Status Token(const Call& c, std::string* bearer) const {
    Status s = tokens_->Token(bearer);
    return s.ok() ? s : Status(s.code(), Where(c) + ": " + s.message());
  }

  Status BuildWithToken(const Call& c, HttpRequest* req, std::string* bearer) const {
    Status s = Token(c, bearer);  // the cache hands out one token until near its expiry
    if (s.ok()) Build(c, *bearer, req);
    return s;
  }

  static std::string ErrorCode(const HttpResponse& r) {
    s3::S3Error e;
    return !r.body.empty() && s3::ParseS3Error(r.body, &e) ? e.code : "";
  }

  // Maps the outcome of one attempt to a Status naming the bucket, the
  // object and the likely fix. `bearer` is redacted from every message.
  Status Classify(const Call& c, const std::string& bearer, const Status& transport, const HttpResponse& r,
                  bool ok_416 = false) const {
    const std::string where = Where(c);
    auto redact = [&](std::string m) { return RedactSecrets(std::move(m), {&bearer}); };
    if (!transport.ok()) return Status(transport.code(), redact(where + ": " + transport.message()));
    const long st = r.status;
    s3::S3Error e;
    const bool has_error = !r.body.empty() && s3::ParseS3Error(r.body, &e);
    if (st >= 200 && st < 300 && !(c.error_body_on_200 && has_error)) return Status::OK();
    if (st == 416 && ok_416) return Status::OK();
    std::string message = has_error ? e.message.substr(0, 300) : "";
    const std::string detail = has_error ? e.code + (message.empty() ? "" : ": " + message) + " (HTTP " +
                                               std::to_string(st) + ")"
                                         : "HTTP " + std::to_string(st);
    auto msg = [&](const std::string& hint) {
      return redact(where + ": " + detail + (hint.empty() ? "" : "; " + hint));
    };
    if (e.code == "NoSuchBucket")
      return Status::NotFound(redact("bucket '" + bucket_ + "' does not exist: create it or fix the URL (" + where +
                                     ": " + detail + ")"));
    if (st == 401)
      return Status::Unauthenticated(msg(
          "the access token from the " + tokens_->Describe() +
          " was refused: check that GOOGLE_APPLICATION_CREDENTIALS names a current key of an existing service "
          "account (or, on Google Cloud, the instance's service account), and that the clock is right"));
    if (st == 403)
      return Status::PermissionDenied(
          msg("the service account is valid but not allowed to do this: grant it roles/storage.objectUser (or "
              "Storage Object Admin) on the bucket, and give the instance the devstorage.read_write scope"));
    if (st == 412) return Status::FailedPrecondition(msg("the object changed or already exists (conditional write lost)"));
    if (st == 404) return Status::NotFound(msg(c.key.empty() ? "" : "no object '" + c.key + "' in bucket '" + bucket_ + "'"));
    if (st >= 500 || st == 429 || st == 408 || st == 0) return Status::Unavailable(msg(""));
    if (e.code == "BadDigest") return Status::Unavailable(msg("the body was damaged in transit; retrying"));
    if (e.code == "EntityTooLarge" || e.code == "InvalidPart" || e.code == "EntityTooSmall")
      return Status::InvalidArgument(msg("check the replica URL's multipart-threshold / multipart-part-size"));
    return Status::InvalidArgument(msg(""));
  }

  // One request with retries (HttpRetry's rules); *r receives the last
  // response. The token is taken once: it is valid for minutes, enough
  // for every retry. A token refused (401) before its expiry, e.g.
  // revoked, is dropped from the shared cache and the request tried once
  // more with a new one.
  Status Do(const Call& c, HttpResponse* r, bool ok_416 = false) {
    std::string bearer;
    Status ts = Token(c, &bearer);
    if (!ts.ok()) return ts;
    return retry_.Do(
        http_.get(),
        [&](HttpRequest* req) {
          Build(c, bearer, req);
          return Status::OK();
        },
        [&](const Status& t, const HttpResponse& resp) { return Classify(c, bearer, t, resp, ok_416); }, r,
        [&](const HttpResponse&) { return tokens_->Invalidate(bearer) && tokens_->Token(&bearer).ok(); });
  }

  // XML API multipart upload: initiate, parts in parallel through the
  // pool (multipart_concurrency in flight), complete with the put's
  // generation condition; aborted when anything fails.
  Status PutMultipart(const std::string& key, const std::string& path, uint64_t size, const PutOptions& opts) {
    const uint64_t part = config_.multipart_part_size;
    const size_t n = static_cast<size_t>((size + part - 1) / part);
    if (n > kMaxParts)
      return Status::InvalidArgument("PutFile gs://" + bucket_ + "/" + key + ": " + std::to_string(n) +
                                     " parts exceed the limit of 10000: raise multipart-part-size= in the replica URL");
    Call init = ObjectCall("CreateMultipartUpload", "POST", key);
    init.query = {{"uploads", ""}};
    Call done = ObjectCall("CompleteMultipartUpload", "POST", key);
    if (!AddConditions(opts, &done))
      return Status::FailedPrecondition(Where(done) + ": the version to replace ('" + opts.if_match +
                                        "') is not a GCS generation number, so it cannot be the live one");
    std::string write_id;  // metadata is given when the upload starts
    if (opts.if_none_match || !opts.if_match.empty()) {
      write_id = NewWriteId();
      init.headers.emplace_back(kWriteIdHeader, write_id);
    }
    HttpResponse r;
    Status s = Do(init, &r);
    if (!s.ok()) return s;
    std::string upload_id;
    if (!(s = s3::ParseInitiateMultipartUpload(r.body, &upload_id)).ok()) return s.Annotate(Where(init) + ": ");
    std::vector<Call> calls(n);
    std::vector<std::string> bearers(n), etags(n);
    s = retry_.RunConcurrent(
        http_.get(), n, config_.multipart_concurrency,
        [&](size_t i, int attempt, HttpRequest* req) {
          Call& c = calls[i];
          if (attempt == 0) {
            c = ObjectCall("UploadPart", "PUT", key);
            c.query = {{"partNumber", std::to_string(i + 1)}, {"uploadId", upload_id}};
            c.file = path;
            c.file_off = i * part;
            c.file_len = std::min<uint64_t>(part, size - i * part);
            std::string sha, md5;
            Status ds = DigestFileRange(path, c.file_off, c.file_len, &sha, &md5);
            if (!ds.ok()) return ds;
            c.headers.emplace_back("content-md5", md5);
          }
          return BuildWithToken(c, req, &bearers[i]);
        },
        [&](size_t i, const Status& t, const HttpResponse& resp) { return Classify(calls[i], bearers[i], t, resp); },
        [&](size_t i, const HttpResponse& resp) { etags[i] = resp.Header("etag"); });
    if (s.ok()) {
      const std::string body = s3::BuildCompleteMultipartUpload(etags);
      done.query = {{"uploadId", upload_id}};
      done.headers.emplace_back("content-type", "application/xml");
      done.body = &body;
      done.error_body_on_200 = true;
      HttpResponse dr;
      s = Do(done, &dr);
      if (s.code() == Code::kFailedPrecondition && !write_id.empty()) s = RecognizeOwnWrite(key, write_id, s, nullptr);
      if (s.ok()) return s;
    }
    Abort(key, upload_id);
    return s;
  }

  void Abort(const std::string& key, const std::string& upload_id) {
    Call c = ObjectCall("AbortMultipartUpload", "DELETE", key);
    c.query = {{"uploadId", upload_id}};
    HttpResponse r;
    (void)Do(c, &r);  // best effort: an upload left behind keeps its parts until a lifecycle rule removes it
  }

  std::shared_ptr<HttpClient> http_;
  Env* env_;
  const StoreConfig config_;
  const std::shared_ptr<gcs::GcsTokenSource> tokens_;
  const std::string bucket_;
  const std::string scheme_authority_;  // "https://storage.googleapis.com" or "http://127.0.0.1:PORT"
  const std::string base_path_;         // "" or the endpoint's path
  const std::string ca_file_;
  const bool verify_tls_;
  HttpRetry retry_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
  std::string describe_;
};

}  // namespace

Status OpenGcsStore(const ReplicaUrl& url, std::shared_ptr<gcs::GcsTokenSource> tokens,
                    std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                    std::shared_ptr<ObjectStore>* out) {
  if (url.scheme != "gs") return Status::InvalidArgument("not a gs:// URL: " + url.ToString());
  if (!http) return Status::InvalidArgument("OpenGcsStore: no HTTP client");
  if (!tokens) return Status::InvalidArgument("OpenGcsStore: no token source");
  for (const char* p : {"region", "force-path-style", "checksum"})
    if (url.params.count(p))
      return Status::InvalidArgument(std::string("'") + p + "' is for s3:// URLs (or gs:// with HMAC keys); gs:// "
                                     "with Google credentials takes endpoint, ca-file, insecure-skip-verify, "
                                     "multipart-threshold and multipart-part-size");
  std::string endpoint_value = UrlParam(url, "endpoint");
  if (endpoint_value.empty()) endpoint_value = "https://storage.googleapis.com";
  Endpoint ep;
  Status s = ParseEndpoint(endpoint_value, &ep);
  if (!s.ok()) return s;
  const std::string skip = UrlParam(url, "insecure-skip-verify");
  if (!skip.empty() && skip != "true" && skip != "false")
    return Status::InvalidArgument("insecure-skip-verify must be true or false, not '" + skip + "'");
  StoreConfig cfg = config;
  s = SizeParam("multipart-threshold", UrlParam(url, "multipart-threshold"), &cfg.multipart_threshold);
  if (s.ok()) s = SizeParam("multipart-part-size", UrlParam(url, "multipart-part-size"), &cfg.multipart_part_size);
  if (!s.ok()) return s;
  *out = std::make_shared<GcsStore>(std::move(http), env ? env : Env::Default(), cfg, std::move(tokens), url.bucket,
                                    ep.scheme + "://" + ep.authority, ep.path, UrlParam(url, "ca-file"),
                                    skip != "true");
  return Status::OK();
}

}  // namespace replite
