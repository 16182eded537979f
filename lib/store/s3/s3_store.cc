#include "store/s3/s3_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>

#include "http/http_client.h"
#include "store/body_digest.h"
#include "store/http_retry.h"
#include "store/http_store_util.h"
#include "store/s3/s3_credentials.h"
#include "store/s3/s3_xml.h"
#include "util/file_util.h"

namespace replite {
namespace {

using s3::KeyValues;

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// One S3 request, before signing (it is signed again on each attempt: the
// signing time must be fresh).
struct Call {
  std::string op;   // "PutObject", ... for messages
  std::string method;
  std::string key;  // "" for bucket-level requests
  KeyValues query;
  KeyValues headers;  // lower-case names
  const std::string* body = nullptr;
  std::string file;  // body streamed from [file_off, file_off + file_len)
  uint64_t file_off = 0, file_len = 0;
  std::string payload_hash = s3::Sha256Hex("");
  bool error_body_on_200 = false;  // CompleteMultipartUpload may fail with 200
};

class S3Store final : public ObjectStore {
 public:
  S3Store(std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config, std::string bucket,
          std::string region, std::string scheme_host, std::string host, bool path_style, bool gcs,
          s3::AwsCredentials creds, std::string ca_file, bool verify_tls)
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
        signer_(region, "s3"),
        retry_(config) {
    describe_ = std::string(gcs ? "gs://" : "s3://") + bucket_ + " (endpoint " + scheme_host_ +
                (path_style_ ? ", path style" : "") + ", region " + region + ")";
  }

  Status Put(const std::string& key, const std::string& data, const PutOptions& opts, std::string* etag) override {
    Call c = BaseCall("PutObject", "PUT", key);
    BodyDigest d;
    d.Update(data.data(), data.size());
    std::string md5;
    d.Finish(&c.payload_hash, &md5);
    c.headers.emplace_back("content-md5", md5);
    AddConditions(opts, &c);
    c.body = &data;
    HttpResponse r;
    Status s = Do(c, &r);
    if (s.ok() && etag) *etag = r.Header("etag");
    return s;
  }

  Status PutFile(const std::string& key, const std::string& local_path, const PutOptions& opts) override {
    uint64_t size = 0;
    Status s = LocalFileSize(local_path, &size);
    if (!s.ok()) return s;
    if (size > config_.multipart_threshold && size > config_.multipart_part_size)
      return PutMultipart(key, local_path, size, opts);
    Call c = BaseCall("PutObject", "PUT", key);
    std::string md5;
    s = DigestFileRange(local_path, 0, size, &c.payload_hash, &md5);
    if (!s.ok()) return s;
    c.headers.emplace_back("content-md5", md5);
    AddConditions(opts, &c);
    c.file = local_path;
    c.file_len = size;
    HttpResponse r;
    return Do(c, &r);
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
      std::vector<std::string> errors;
      if (!(s = s3::ParseDeleteResult(r.body, &errors)).ok()) return s;
      if (!errors.empty()) {
        std::string msg = "DeleteObjects s3://" + bucket_ + ": " + std::to_string(errors.size()) +
                          " key(s) not deleted, first: " + errors[0];
        if (errors[0].find("AccessDenied") != std::string::npos) return Status::PermissionDenied(Redact(msg));
        return Status::Unavailable(Redact(msg));
      }
    }
    return Status::OK();
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

  static void AddConditions(const PutOptions& opts, Call* c) { AddPutConditions(opts, &c->headers); }

  std::string Where(const Call& c) const {
    return c.op + " s3://" + bucket_ + (c.key.empty() ? "" : "/" + c.key);
  }

  // Removes any credential material an error text might echo back (some
  // servers quote the access key id; nothing may quote the secret).
  std::string Redact(std::string msg) const {
    return RedactSecrets(std::move(msg), {&creds_.secret_access_key, &creds_.session_token, &creds_.access_key_id});
  }

  // Builds and signs the HTTP request for one attempt.
  void Build(const Call& c, HttpRequest* req) {
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
    signer_.SignHeaders(creds_, env_->NowMicros(), sr, {}, &signed_req);

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
      return Status::Unauthenticated(msg(
          "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile) and that the clock is right"));
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

  // One request with retries (HttpRetry's rules). *r receives the last
  // response.
  Status Do(const Call& c, HttpResponse* r, bool ok_416 = false) {
    return retry_.Do(
        http_.get(), [&](HttpRequest* req) { Build(c, req); },
        [&](const Status& t, const HttpResponse& resp) { return Classify(c, t, resp, ok_416); }, r);
  }

  // Multipart: parts are submitted asynchronously, up to
  // multipart_concurrency at once, through the shared pool. This thread
  // only digests parts, schedules retries and waits; on failure it aborts
  // the upload so no orphan parts are billed.
  Status PutMultipart(const std::string& key, const std::string& path, uint64_t size, const PutOptions& opts) {
    Call init = BaseCall("CreateMultipartUpload", "POST", key);
    init.query = {{"uploads", ""}};
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
      AddConditions(opts, &done);
      done.body = &body;
      done.error_body_on_200 = true;
      s = Do(done, &r);
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
      Build(c, req);  // the body is a file range: nothing big to copy
      return Status::OK();
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
  const s3::AwsCredentials creds_;
  const std::string ca_file_;  // URL ca-file=, "" = the client's default
  const bool verify_tls_;      // false only with insecure-skip-verify=true
  s3::SigV4Signer signer_;
  std::string describe_;
  HttpRetry retry_;
};

}  // namespace

Status OpenS3StoreWithCredentials(const ReplicaUrl& url, const s3::AwsCredentials& creds,
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
  if (!s.ok()) return s;
  *out = std::make_shared<S3Store>(std::move(http), env ? env : Env::Default(), cfg, url.bucket, region,
                                   scheme + "://" + host, host, path_style, gcs, creds, param("ca-file"),
                                   skip != "true");
  return Status::OK();
}

Status OpenS3Store(const ReplicaUrl& url, std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                   std::shared_ptr<ObjectStore>* out) {
  s3::AwsCredentials creds;
  std::string source;
  auto it = url.params.find("profile");
  Status s = s3::LoadCredentials(it == url.params.end() ? "" : it->second, &creds, &source);
  if (!s.ok()) return s.Annotate(url.scheme + "://" + url.bucket + ": ");
  return OpenS3StoreWithCredentials(url, creds, std::move(http), env, config, out);
}

}  // namespace replite
