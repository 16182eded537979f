#include "store/s3/s3_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "http/http_client.h"
#include "store/body_digest.h"
#include "store/http_retry.h"
#include "store/http_store_util.h"
#include "store/s3/checksum.h"
#include "store/s3/credential_provider.h"
#include "store/s3/s3_credentials.h"
#include "store/s3/s3_xml.h"
#include "util/file_util.h"

namespace replite {
namespace {

using s3::KeyValues;

// Metadata of a conditional write: a random id (see AddConditions).
constexpr const char* kWriteIdHeader = "x-amz-meta-replite-write-id";

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// One S3 request, before signing (it is signed again on each attempt: the
// signing time must be fresh).
struct Call : HttpCall {
  std::string payload_hash = s3::Sha256Hex("");
};

class S3Store final : public ObjectStore {
 public:
  S3Store(std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config, std::string bucket,
          std::string region, std::string scheme_host, std::string host, bool path_style, bool gcs,
          std::shared_ptr<s3::CredentialProvider> creds, std::string ca_file, bool verify_tls,
          s3::ChecksumAlgorithm checksum)
      : http_(std::move(http)),
        env_(env),
        config_(config),
        bucket_(std::move(bucket)),
        scheme_host_(std::move(scheme_host)),
        host_(std::move(host)),
        path_style_(path_style),
        creds_(std::move(creds)),
        ca_file_(std::move(ca_file)),
        verify_tls_(verify_tls),
        checksum_(checksum),
        signer_(region, "s3"),
        retry_(config) {
    describe_ = std::string(gcs ? "gs://" : "s3://") + bucket_ + " (endpoint " + scheme_host_ +
                (path_style_ ? ", path style" : "") + ", region " + region + ")";
  }

  Status Put(const std::string& key, const std::string& data, const PutOptions& opts, std::string* etag) override {
    Call c = BaseCall("PutObject", "PUT", key);
    BodyDigest d(checksum_);
    d.Update(data.data(), data.size());
    std::string md5;
    d.Finish(&c.payload_hash, &md5);
    c.headers.emplace_back("content-md5", md5);
    AddChecksum(d.crc().HeaderValue(), &c);
    const std::string token = AddConditions(opts, &c);
    c.body = &data;
    HttpResponse r;
    Status s = Do(c, &r);
    std::string tag = r.Header("etag");
    if (s.code() == Code::kFailedPrecondition) s = RecognizeOwnWrite(key, token, s, &tag);
    if (s.ok() && etag) *etag = tag;
    return s;
  }

  Status PutFile(const std::string& key, const std::string& local_path, const PutOptions& opts) override {
    uint64_t size = 0;
    Status s = LocalFileSize(local_path, &size);
    if (!s.ok()) return s;
    if (size > config_.multipart_threshold && size > config_.multipart_part_size)
      return PutMultipart(key, local_path, size, opts);
    Call c = BaseCall("PutObject", "PUT", key);
    std::string md5, crc;
    s = DigestFileRange(local_path, 0, size, &c.payload_hash, &md5, checksum_, &crc);
    if (!s.ok()) return s;
    c.headers.emplace_back("content-md5", md5);
    AddChecksum(crc, &c);
    const std::string token = AddConditions(opts, &c);
    c.file = local_path;
    c.file_len = size;
    HttpResponse r;
    s = Do(c, &r);
    std::string tag;
    if (s.code() == Code::kFailedPrecondition) s = RecognizeOwnWrite(key, token, s, &tag);
    return s;
  }

  Status Get(const std::string& key, std::string* out, uint64_t offset, uint64_t length) override {
    out->clear();
    if (length == 0) {
      ObjectInfo info;
      return Head(key, &info);  // keeps the kNotFound contract for empty reads
    }
    Call c = BaseCall("GetObject", "GET", key);
    const std::string range = RangeValue(offset, length);
    if (!range.empty()) c.headers.emplace_back("range", range);
    HttpResponse r;
    Status s = Do(c, &r, /*ok_416=*/true);
    if (s.ok()) TakeRange(&r, offset, length, out);
    return s;
  }

  Status Head(const std::string& key, ObjectInfo* out) override {
    Call c = BaseCall("HeadObject", "HEAD", key);
    HttpResponse r;
    Status s = Do(c, &r);
    if (s.ok()) InfoFromHeaders(key, r, out);
    return s;
  }

  Status List(const std::string& prefix, std::vector<ObjectInfo>* out) override {
    out->clear();
    std::string token;
    while (true) {
      Call c = BaseCall("ListObjectsV2", "GET", "");
      c.query = {{"list-type", "2"}, {"prefix", prefix}};
      if (config_.list_max_keys > 0 && config_.list_max_keys != 1000)
        c.query.emplace_back("max-keys", std::to_string(config_.list_max_keys));
      if (!token.empty()) c.query.emplace_back("continuation-token", token);
      HttpResponse r;
      Status s = Do(c, &r);
      if (!s.ok()) return s;
      s3::ListPage page;
      if (!(s = s3::ParseListObjectsV2(r.body, &page)).ok())
        return s.Annotate("s3://" + bucket_ + " prefix '" + prefix + "': ");
      for (auto& o : page.objects) out->push_back(std::move(o));
      if (!page.truncated) break;
      if (page.next_token == token)
        return Status::Corruption("ListObjectsV2 s3://" + bucket_ + ": the store repeated a continuation token");
      token = page.next_token;
    }
    std::sort(out->begin(), out->end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return Status::OK();
  }

  Status Delete(const std::vector<std::string>& keys) override {
    constexpr size_t kBatch = 1000;  // the DeleteObjects maximum
    for (size_t b = 0; b < keys.size(); b += kBatch) {
      const size_t e = std::min(keys.size(), b + kBatch);
      const std::string body = s3::BuildDeleteObjects(keys, b, e);
      Call c = BaseCall("DeleteObjects", "POST", "");
      c.query = {{"delete", ""}};
      BodyDigest d;
      d.Update(body.data(), body.size());
      std::string md5;
      d.Finish(&c.payload_hash, &md5);
      c.headers.emplace_back("content-md5", md5);  // required by DeleteObjects
      c.headers.emplace_back("content-type", "application/xml");
      c.body = &body;
      HttpResponse r;
      Status s = Do(c, &r);
      if (!s.ok()) return s;
      std::vector<s3::DeleteError> errors;
      if (!(s = s3::ParseDeleteResult(r.body, &errors)).ok()) return s;
      if (!errors.empty()) {
        std::string msg = "DeleteObjects s3://" + bucket_ + ": " + std::to_string(errors.size()) +
                          " key(s) not deleted, first: " + errors[0].Text();
        // By the error code: a key may contain "AccessDenied" in its name.
        if (errors[0].code == "AccessDenied") return Status::PermissionDenied(Redact(msg));
        return Status::Unavailable(Redact(msg));
      }
    }
    return Status::OK();
  }

  // Multipart uploads under `prefix` started before `older_than_ms` and
  // never completed: a writer killed mid-upload. Aborted, so their parts
  // stop being billed. Pages through ListMultipartUploads.
  Status RemoveAbandoned(const std::string& prefix, int64_t older_than_ms, uint64_t* removed) override {
    if (removed) *removed = 0;
    std::string key_marker, id_marker;
    while (true) {
      Call c = BaseCall("ListMultipartUploads", "GET", "");
      c.query = {{"uploads", ""}, {"prefix", prefix}};
      if (config_.list_max_keys > 0 && config_.list_max_keys != 1000)
        c.query.emplace_back("max-uploads", std::to_string(config_.list_max_keys));
      if (!key_marker.empty()) c.query.emplace_back("key-marker", key_marker);
      if (!id_marker.empty()) c.query.emplace_back("upload-id-marker", id_marker);
      HttpResponse r;
      Status s = Do(c, &r);
      if (!s.ok()) return s;
      s3::UploadsPage page;
      if (!(s = s3::ParseListMultipartUploads(r.body, &page)).ok()) return s;
      for (const auto& u : page.uploads) {
        if (u.initiated_ms == 0 || u.initiated_ms >= older_than_ms) continue;
        Call abort = BaseCall("AbortMultipartUpload", "DELETE", u.key);
        abort.query = {{"uploadId", u.upload_id}};
        HttpResponse ar;
        s = Do(abort, &ar);
        if (s.code() == Code::kNotFound) continue;  // completed or aborted meanwhile
        if (!s.ok()) return s;
        if (removed) (*removed)++;
      }
      if (!page.truncated) return Status::OK();
      if (page.next_key_marker == key_marker && page.next_upload_id_marker == id_marker)
        return Status::Corruption("ListMultipartUploads s3://" + bucket_ + ": the listing does not advance");
      key_marker = page.next_key_marker;
      id_marker = page.next_upload_id_marker;
    }
  }

  std::string Describe() const override { return describe_; }

 private:
  Call BaseCall(const char* op, const char* method, const std::string& key) {
    Call c;
    c.op = op;
    c.method = method;
    c.key = key;
    return c;
  }

  // Adds the conditions of a conditional write, and a random write id in
  // the object's metadata (returned; "" for an unconditional write). When
  // an attempt's answer is lost (reset, timeout, 5xx; libcurl itself
  // resends a request whose reused connection died, so we may never see
  // the first attempt) and a retry is refused by its own condition, the id
  // tells whether the object there is this very write (an earlier attempt
  // won) or another writer's.
  std::string AddConditions(const PutOptions& opts, Call* c) {
    if (!opts.if_none_match && opts.if_match.empty()) return "";
    AddPutConditions(opts, &c->headers);
    const std::string id = NewWriteId();
    c->headers.emplace_back(kWriteIdHeader, id);
    return id;
  }

  // The x-amz-checksum-* header of a single-request PUT (and the SDK's
  // algorithm header, which some services need to keep it), when enabled.
  void AddChecksum(const std::string& value, Call* c) const {
    if (checksum_ == s3::ChecksumAlgorithm::kNone) return;
    const s3::Crc kind(checksum_);
    c->headers.emplace_back(kind.HeaderName(), value);
    c->headers.emplace_back("x-amz-sdk-checksum-algorithm",
                            checksum_ == s3::ChecksumAlgorithm::kCrc32c ? "CRC32C" : "CRC64NVME");
  }

  // 128 random bits in hex.
  std::string NewWriteId() {
    uint64_t a, b;
    {
      std::lock_guard<std::mutex> l(rng_mu_);
      a = rng_();
      b = rng_();
    }
    char buf[33];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(a),
                  static_cast<unsigned long long>(b));
    return buf;
  }

  // A conditional write was refused: if the object now at `key` carries
  // our write id, an earlier attempt of this write won and the write
  // succeeded (*etag receives the object's ETag); otherwise `refused`
  // stands. One HEAD, only on a refusal.
  Status RecognizeOwnWrite(const std::string& key, const std::string& write_id, const Status& refused,
                           std::string* etag) {
    if (write_id.empty()) return refused;
    Call head = BaseCall("HeadObject", "HEAD", key);
    HttpResponse r;
    Status s = Do(head, &r);
    if (!s.ok() || r.Header(kWriteIdHeader) != write_id) return refused;
    *etag = r.Header("etag");
    return Status::OK();
  }

  std::string Where(const Call& c) const {
    return c.op + " s3://" + bucket_ + (c.key.empty() ? "" : "/" + c.key);
  }

  // Removes any credential material an error text might echo back (some
  // servers quote the access key id; nothing may quote the secret).
  std::string Redact(std::string msg) const { return creds_->Redact(std::move(msg)); }

  // Builds and signs the HTTP request for one attempt. Fails only when no
  // valid credentials can be had (the provider's error, which names its
  // source); *key_id receives the access key id signed with.
  Status Build(const Call& c, HttpRequest* req, std::string* key_id = nullptr) {
    s3::AwsCredentials creds;
    Status cs = creds_->Get(&creds);
    if (!cs.ok()) return Status(cs.code(), Redact(Where(c) + ": " + cs.message()));
    if (key_id) *key_id = creds.access_key_id;
    std::string path;
    if (path_style_) {
      path = "/" + bucket_ + (c.key.empty() ? "" : "/" + c.key);
    } else {
      path = "/" + c.key;
    }
    s3::SigningRequest sr;
    sr.method = c.method;
    sr.path = path;
    sr.query = c.query;
    sr.headers = c.headers;
    sr.headers.emplace_back("host", host_);
    sr.payload_hash = c.payload_hash;
    s3::SignedRequest signed_req;
    signer_.SignHeaders(creds, env_->NowMicros(), sr, {}, &signed_req);

    *req = HttpRequest();
    req->method = c.method;
    req->url = scheme_host_ + s3::UriEncode(path, true);
    std::string q = s3::CanonicalQuery(c.query);
    if (!q.empty()) req->url += "?" + q;
    req->headers = std::move(sr.headers);
    for (auto& h : signed_req.add_headers) req->headers.push_back(std::move(h));
    req->ca_file = ca_file_;
    req->verify_tls = verify_tls_;
    if (c.body) req->body_ptr = c.body;
    if (!c.file.empty()) {
      req->body_file = c.file;
      req->body_offset = c.file_off;
      req->body_length = c.file_len;
    }
    return Status::OK();
  }

  // Maps the outcome of one attempt to a Status with a message that names
  // the bucket, the key and the likely fix.
  Status Classify(const Call& c, const Status& transport, const HttpResponse& r, bool ok_416) const {
    const std::string where = Where(c);
    if (!transport.ok()) return Status(transport.code(), Redact(where + ": " + transport.message()));
    const long st = r.status;
    s3::S3Error e;
    const bool has_error = !r.body.empty() && s3::ParseS3Error(r.body, &e);
    if (st >= 200 && st < 300 && !(c.error_body_on_200 && has_error)) return Status::OK();
    if (st == 416 && ok_416) return Status::OK();

    std::string detail = has_error ? e.code + (e.message.empty() ? "" : ": " + e.message) : "HTTP " + std::to_string(st);
    if (has_error) detail += " (HTTP " + std::to_string(st) + ")";
    auto msg = [&](const std::string& hint) { return Redact(where + ": " + detail + (hint.empty() ? "" : "; " + hint)); };
    const std::string& code = e.code;

    if (code == "NoSuchBucket")
      return Status::NotFound(Redact("bucket '" + bucket_ + "' does not exist: create it or fix the URL (" +
                                     where + ": " + detail + ")"));
    if (code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "ExpiredToken" ||
        code == "InvalidToken" || code == "TokenRefreshRequired" || code == "InvalidSecurity" || st == 401)
      return Status::Unauthenticated(msg("credentials from " + creds_->Describe() +
                                         ": check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile, or the "
                                         "role) and that the clock is right"));
    if (code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect" || code == "IllegalLocationConstraintException" ||
        st == 301) {
      std::string region = r.Header("x-amz-bucket-region");
      return Status::InvalidArgument(
          msg(region.empty() ? "the bucket is probably in another region: set region=... in the URL"
                             : "the bucket is in region '" + region + "': add region=" + region + " to the URL"));
    }
    if (code == "AccessDenied" || code == "AllAccessDisabled" || code == "AccountProblem" || st == 403)
      return Status::PermissionDenied(
          msg("the credentials are valid but not allowed to do this: grant s3:" + c.op + " on the bucket"));
    if (st == 412 || code == "PreconditionFailed" || code == "ConditionalRequestConflict")
      return Status::FailedPrecondition(msg("the object changed or already exists (conditional write lost)"));
    if (st == 404 || code == "NoSuchKey" || code == "NoSuchUpload")
      return Status::NotFound(msg(c.key.empty() ? "" : "no object '" + c.key + "' in bucket '" + bucket_ + "'"));
    if (st >= 500 || st == 429 || code == "SlowDown" || code == "RequestTimeout" || code == "RequestTimeTooSkewed" ||
        code == "InternalError" || code == "ServiceUnavailable" || code == "Throttling" || st == 0)
      return Status::Unavailable(msg(""));
    if (code == "BadDigest" || code == "XAmzContentSHA256Mismatch" || code == "InvalidDigest")
      return Status::Unavailable(msg("the body was damaged in transit; retrying"));
    if (code == "EntityTooSmall" || code == "EntityTooLarge" || code == "InvalidPart")
      return Status::InvalidArgument(
          msg("check the replica URL's multipart-threshold / multipart-part-size (parts must be >= 5 MiB)"));
    return Status::InvalidArgument(msg(""));
  }

  static bool RejectedAsExpired(const HttpResponse& r) {
    s3::S3Error e;
    if (r.body.empty() || !s3::ParseS3Error(r.body, &e)) return false;
    return e.code == "ExpiredToken" || e.code == "TokenRefreshRequired" || e.code == "InvalidToken" ||
           e.code == "InvalidAccessKeyId";
  }

  // One request with retries (HttpRetry's rules). *r receives the last
  // response. Temporary credentials the server calls expired (clock skew,
  // or revoked early) are fetched again and the request tried once more at
  // once.
  Status Do(const Call& c, HttpResponse* r, bool ok_416 = false) {
    std::string key_id;
    return retry_.Do(
        http_.get(), [&](HttpRequest* req) { return Build(c, req, &key_id); },
        [&](const Status& t, const HttpResponse& resp) { return Classify(c, t, resp, ok_416); }, r,
        [&](const HttpResponse& resp) { return RejectedAsExpired(resp) && creds_->Invalidate(key_id); });
  }

  // Multipart: parts are submitted asynchronously, up to
  // multipart_concurrency at once, through the shared pool. This thread
  // only digests parts, schedules retries and waits; on failure it aborts
  // the upload so no orphan parts are billed.
  Status PutMultipart(const std::string& key, const std::string& path, uint64_t size, const PutOptions& opts) {
    Call init = BaseCall("CreateMultipartUpload", "POST", key);
    init.query = {{"uploads", ""}};
    // A conditional upload's write id goes in the object's metadata, set
    // when the upload starts; the conditions go on the completion.
    const std::string token = opts.if_none_match || !opts.if_match.empty() ? NewWriteId() : "";
    if (!token.empty()) init.headers.emplace_back(kWriteIdHeader, token);
    HttpResponse r;
    Status s = Do(init, &r);
    if (!s.ok()) return s;
    std::string upload_id;
    if (!(s = s3::ParseInitiateMultipartUpload(r.body, &upload_id)).ok()) return s;

    std::vector<std::string> etags;
    s = UploadParts(key, path, size, upload_id, &etags);
    if (s.ok()) {
      const std::string body = s3::BuildCompleteMultipartUpload(etags);
      Call done = BaseCall("CompleteMultipartUpload", "POST", key);
      done.query = {{"uploadId", upload_id}};
      done.payload_hash = s3::Sha256Hex(body);
      done.headers.emplace_back("content-type", "application/xml");
      AddPutConditions(opts, &done.headers);
      done.body = &body;
      done.error_body_on_200 = true;
      s = Do(done, &r);
      std::string tag;
      if (s.code() == Code::kFailedPrecondition) s = RecognizeOwnWrite(key, token, s, &tag);
      if (s.ok()) return s;
    }
    Call abort = BaseCall("AbortMultipartUpload", "DELETE", key);
    abort.query = {{"uploadId", upload_id}};
    HttpResponse ar;
    Status as = Do(abort, &ar);
    return as.ok() ? s : s.Annotate("(abort also failed: " + as.message() + ") ");
  }

  Status UploadParts(const std::string& key, const std::string& path, uint64_t size, const std::string& upload_id,
                     std::vector<std::string>* etags) {
    const uint64_t part = config_.multipart_part_size;
    const size_t n = static_cast<size_t>((size + part - 1) / part);
    if (n > 10000)
      return Status::InvalidArgument("PutFile s3://" + bucket_ + "/" + key + ": " + std::to_string(n) +
                                     " parts exceed the S3 limit of 10000: raise multipart-part-size= in the replica URL");
    std::vector<Call> calls(n);
    etags->assign(n, std::string());
    auto prepare = [&](size_t i, int attempt, HttpRequest* req) {
      Call& c = calls[i];
      if (attempt == 0) {  // digest the part only when it first starts
        c = BaseCall("UploadPart", "PUT", key);
        c.query = {{"partNumber", std::to_string(i + 1)}, {"uploadId", upload_id}};
        c.file = path;
        c.file_off = i * part;
        c.file_len = std::min<uint64_t>(part, size - i * part);
        std::string md5;
        Status ds = DigestFileRange(path, c.file_off, c.file_len, &c.payload_hash, &md5);
        if (!ds.ok()) return ds;
        c.headers.emplace_back("content-md5", md5);
      }
      return Build(c, req);  // the body is a file range: nothing big to copy
    };
    return retry_.RunConcurrent(
        http_.get(), n, config_.multipart_concurrency, prepare,
        [&](size_t i, const Status& t, const HttpResponse& resp) { return Classify(calls[i], t, resp, false); },
        [&](size_t i, const HttpResponse& resp) { (*etags)[i] = resp.Header("etag"); });
  }

  std::shared_ptr<HttpClient> http_;
  Env* env_;
  const StoreConfig config_;
  const std::string bucket_;
  const std::string scheme_host_;  // "https://bucket.s3.us-east-1.amazonaws.com" or "http://127.0.0.1:9000"
  const std::string host_;         // Host header, signed
  const bool path_style_;
  const std::shared_ptr<s3::CredentialProvider> creds_;  // shared by every store of the Replicator
  const std::string ca_file_;  // URL ca-file=, "" = the client's default
  const bool verify_tls_;      // false only with insecure-skip-verify=true
  const s3::ChecksumAlgorithm checksum_;  // URL checksum=; single-request PUTs only
  s3::SigV4Signer signer_;
  std::string describe_;
  HttpRetry retry_;
  std::mutex rng_mu_;  // write ids of conditional writes
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace

namespace {

}  // namespace

Status OpenS3StoreWithProvider(const ReplicaUrl& url, std::shared_ptr<s3::CredentialProvider> creds,
                               std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                               std::shared_ptr<ObjectStore>* out) {
  if (url.scheme != "s3" && url.scheme != "gs")
    return Status::InvalidArgument("not an s3:// or gs:// URL: " + url.ToString());
  if (!http) return Status::InvalidArgument("OpenS3Store: no HTTP client");
  auto param = [&](const char* k) { return UrlParam(url, k); };
  const bool gcs = url.scheme == "gs";
  std::string region = param("region");
  if (region.empty()) region = GetEnv("AWS_REGION");
  if (region.empty()) region = GetEnv("AWS_DEFAULT_REGION");
  if (region.empty()) region = gcs ? "auto" : "us-east-1";

  std::string endpoint_value = param("endpoint");
  if (endpoint_value.empty())
    endpoint_value = gcs ? "https://storage.googleapis.com" : "https://s3." + region + ".amazonaws.com";
  Endpoint ep;
  Status es = ParseEndpoint(endpoint_value, &ep);
  if (es.ok() && !ep.path.empty())
    es = Status::InvalidArgument("endpoint '" + endpoint_value + "': expected SCHEME://HOST[:PORT] without a path");
  if (!es.ok()) return es;
  const std::string scheme = ep.scheme, endpoint = ep.authority, host_only = ep.host;
  const std::string fps = param("force-path-style");
  if (!fps.empty() && fps != "true" && fps != "false")
    return Status::InvalidArgument("force-path-style must be true or false, not '" + fps + "'");
  // Bucket names with dots break TLS wildcard certificates in the
  // virtual-hosted form, so they go path style too.
  const bool path_style = fps == "true" || IsIpOrLocalhost(host_only) ||
                          (scheme == "https" && url.bucket.find('.') != std::string::npos && fps != "false");
  const std::string host = path_style ? endpoint : url.bucket + "." + endpoint;
  const std::string skip = param("insecure-skip-verify");
  if (!skip.empty() && skip != "true" && skip != "false")
    return Status::InvalidArgument("insecure-skip-verify must be true or false, not '" + skip + "'");
  StoreConfig cfg = config;
  Status s = SizeParam("multipart-threshold", param("multipart-threshold"), &cfg.multipart_threshold);
  if (s.ok()) s = SizeParam("multipart-part-size", param("multipart-part-size"), &cfg.multipart_part_size);
  s3::ChecksumAlgorithm checksum = s3::ChecksumAlgorithm::kNone;
  if (s.ok()) s = s3::ParseChecksumAlgorithm(param("checksum"), &checksum);
  if (!s.ok()) return s;
  *out = std::make_shared<S3Store>(std::move(http), env ? env : Env::Default(), cfg, url.bucket, region,
                                   scheme + "://" + host, host, path_style, gcs, std::move(creds), param("ca-file"),
                                   skip != "true", checksum);
  return Status::OK();
}

Status OpenS3StoreWithCredentials(const ReplicaUrl& url, const s3::AwsCredentials& creds,
                                  std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                                  std::shared_ptr<ObjectStore>* out) {
  auto provider = std::make_shared<s3::CredentialProvider>(s3::StaticCredentialSource(creds, "explicit keys"), env);
  return OpenS3StoreWithProvider(url, std::move(provider), std::move(http), env, config, out);
}

Status OpenS3Store(const ReplicaUrl& url, std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                   s3::CredentialCache* cache, std::shared_ptr<ObjectStore>* out) {
  if (!http) return Status::InvalidArgument("OpenS3Store: no HTTP client");
  const std::string profile = UrlParam(url, "profile");
  auto make = [&](std::shared_ptr<s3::CredentialProvider>* p) {
    s3::ChainOptions o;
    o.http = http;
    o.env = env;
    o.region = UrlParam(url, "region");
    std::unique_ptr<s3::CredentialSource> source;
    Status s = s3::ResolveCredentialSource(profile, o, &source);
    if (s.ok()) *p = std::make_shared<s3::CredentialProvider>(std::move(source), env);
    return s;
  };
  std::shared_ptr<s3::CredentialProvider> provider;
  Status s = cache ? cache->Get(profile, make, &provider) : make(&provider);
  if (!s.ok()) return s.Annotate(url.scheme + "://" + url.bucket + ": ");
  return OpenS3StoreWithProvider(url, std::move(provider), std::move(http), env, config, out);
}

Status OpenS3Store(const ReplicaUrl& url, std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                   std::shared_ptr<ObjectStore>* out) {
  return OpenS3Store(url, std::move(http), env, config, nullptr, out);
}

}  // namespace replite
