#include "store/s3/s3_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "store/attempt_scope.h"
#include "http/http_client.h"
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

std::string Base64(const unsigned char* p, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, static_cast<int>(n));
  out.resize(len > 0 ? static_cast<size_t>(len) : 0);
  return out;
}

// SHA-256 (hex, for x-amz-content-sha256) and MD5 (base64, for
// Content-MD5) of a body, computed in one pass. Content-MD5 is the
// integrity check every S3-compatible service verifies; the signed SHA-256
// is the one AWS verifies. Optionally a CRC for an x-amz-checksum-* header
// (see checksum.h).
class BodyDigest {
 public:
  explicit BodyDigest(s3::ChecksumAlgorithm crc = s3::ChecksumAlgorithm::kNone)
      : sha_(EVP_MD_CTX_new()), md5_(EVP_MD_CTX_new()), crc_(crc) {
    EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr);
    EVP_DigestInit_ex(md5_, EVP_md5(), nullptr);
  }
  ~BodyDigest() {
    EVP_MD_CTX_free(sha_);
    EVP_MD_CTX_free(md5_);
  }
  void Update(const void* p, size_t n) {
    EVP_DigestUpdate(sha_, p, n);
    EVP_DigestUpdate(md5_, p, n);
    crc_.Update(p, n);
  }
  const s3::Crc& crc() const { return crc_; }
  void Finish(std::string* sha_hex, std::string* md5_b64) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(sha_, md, &len);
    *sha_hex = s3::HexEncode(std::string_view(reinterpret_cast<char*>(md), len));
    EVP_DigestFinal_ex(md5_, md, &len);
    *md5_b64 = Base64(md, len);
  }

 private:
  EVP_MD_CTX* sha_;
  EVP_MD_CTX* md5_;
  s3::Crc crc_;
};

// Reads [off, off+len) of a file in 256 KiB pieces to digest it: a part or
// a snapshot is never held whole in memory.
Status DigestFileRange(const std::string& path, uint64_t off, uint64_t len, std::string* sha_hex,
                       std::string* md5_b64, s3::ChecksumAlgorithm crc_algo = s3::ChecksumAlgorithm::kNone,
                       std::string* crc_b64 = nullptr) {
  ScopedFd fd;
  Status s = OpenFile(path, O_RDONLY | O_CLOEXEC, 0, &fd);
  if (!s.ok()) return s;
  BodyDigest d(crc_algo);
  std::string buf(256 << 10, '\0');
  uint64_t done = 0;
  while (done < len) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), len - done));
    size_t got = 0;
    if (!(s = PRead(fd.get(), buf.data(), want, off + done, &got, path)).ok()) return s;
    if (got == 0) return Status::IOError("read " + path + ": file shrank while being uploaded");
    d.Update(buf.data(), got);
    done += got;
  }
  d.Finish(sha_hex, md5_b64);
  if (crc_b64) *crc_b64 = d.crc().HeaderValue();
  return Status::OK();
}

int64_t ParseHttpDateMs(const std::string& s) {
  struct tm tm = {};
  if (!strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm)) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

bool IsIpOrLocalhost(const std::string& host) {
  if (host == "localhost" || host.front() == '[') return true;
  return host.find_first_not_of("0123456789.") == std::string::npos;
}

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
        rng_(std::random_device{}()) {
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
    struct stat st;
    if (stat(local_path.c_str(), &st) != 0) return ErrnoStatus("stat " + local_path, errno);
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size > config_.multipart_threshold && size > config_.multipart_part_size)
      return PutMultipart(key, local_path, size, opts);
    Call c = BaseCall("PutObject", "PUT", key);
    std::string md5, crc;
    Status s = DigestFileRange(local_path, 0, size, &c.payload_hash, &md5, checksum_, &crc);
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
    const bool ranged = offset > 0 || length != UINT64_MAX;
    if (ranged) {
      std::string range = "bytes=" + std::to_string(offset) + "-";
      if (length != UINT64_MAX) range += std::to_string(offset + length - 1);
      c.headers.emplace_back("range", range);
    }
    HttpResponse r;
    Status s = Do(c, &r, /*ok_416=*/true);
    if (!s.ok()) return s;
    if (r.status == 416) return Status::OK();  // range starts past the end: no bytes
    *out = std::move(r.body);
    if (ranged && r.status == 200) {
      // The server ignored Range and sent the whole object: cut it here.
      if (offset >= out->size()) {
        out->clear();
      } else {
        *out = out->substr(offset, length == UINT64_MAX ? std::string::npos : length);
      }
    }
    return Status::OK();
  }

  Status Head(const std::string& key, ObjectInfo* out) override {
    Call c = BaseCall("HeadObject", "HEAD", key);
    HttpResponse r;
    Status s = Do(c, &r);
    if (!s.ok()) return s;
    *out = ObjectInfo();
    out->key = key;
    out->size = std::strtoull(r.Header("content-length").c_str(), nullptr, 10);
    out->etag = r.Header("etag");
    out->mtime_ms = ParseHttpDateMs(r.Header("last-modified"));
    return Status::OK();
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
    AddConditionHeaders(opts, c);
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

  static void AddConditionHeaders(const PutOptions& opts, Call* c) {
    if (opts.if_none_match) c->headers.emplace_back("if-none-match", "*");
    if (!opts.if_match.empty()) c->headers.emplace_back("if-match", opts.if_match);
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

  int64_t BackoffMs(int attempt) {
    const int64_t cap = std::min<int64_t>(config_.retry_max_delay_ms,
                                          static_cast<int64_t>(config_.retry_base_delay_ms) << std::min(attempt, 20));
    if (cap <= 0) return 0;
    std::lock_guard<std::mutex> l(rng_mu_);
    return std::uniform_int_distribution<int64_t>(0, cap)(rng_);  // full jitter
  }

  // Attempts per request: one inside a SingleAttemptScope (a probe).
  int MaxAttempts() const { return SingleAttemptScope::active() ? 1 : 1 + std::max(0, config_.max_retries); }

  // One request with retries. *r receives the last response.
  Status Do(const Call& c, HttpResponse* r, bool ok_416 = false) {
    Status s;
    const int attempts = MaxAttempts();
    bool refreshed = false;
    for (int i = 0; i < attempts; i++) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(BackoffMs(i - 1)));
      HttpRequest req;
      std::string key_id;
      s = Build(c, &req, &key_id);
      if (!s.ok()) {
        if (s.retryable()) continue;  // e.g. instance metadata unreachable for a moment
        return s;
      }
      *r = HttpResponse();
      Status t = http_->Perform(req, r);
      s = Classify(c, t, *r, ok_416);
      // Temporary credentials the server calls expired (clock skew, or
      // revoked early): fetch fresh ones and try once more at once.
      if (s.code() == Code::kUnauthenticated && !refreshed && RejectedAsExpired(*r) && creds_->Invalidate(key_id)) {
        refreshed = true;
        i--;
        continue;
      }
      if (s.ok() || !s.retryable()) return s;
      if (t.code() == Code::kIOError) return s;  // our own file failed to read: retrying will not help
    }
    return s.Annotate("after " + std::to_string(attempts) + " attempts: ");
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
      AddConditionHeaders(opts, &done);
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
    struct Part {
      Call call;
      int attempts = 0;
      std::string etag;
    };
    std::vector<Part> parts(n);
    struct Shared {
      std::mutex mu;
      std::condition_variable cv;
      std::deque<std::tuple<size_t, Status, HttpResponse>> done;
    };
    // Shared with the completion callbacks, which may run after an early
    // return of ours only if we returned with parts in flight (we do not).
    auto shared = std::make_shared<Shared>();

    std::deque<std::pair<int64_t, size_t>> ready;  // (not-before ms, part index)
    for (size_t i = 0; i < n; i++) ready.emplace_back(0, i);
    const int window = std::max(1, config_.multipart_concurrency);
    const int attempts_max = MaxAttempts();
    int in_flight = 0;
    size_t finished = 0;
    Status failure;
    auto now_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count();
    };

    while (finished < n && (failure.ok() || in_flight > 0)) {
      // Start what may start.
      while (failure.ok() && in_flight < window && !ready.empty() && ready.front().first <= now_ms()) {
        size_t i = ready.front().second;
        ready.pop_front();
        Part& p = parts[i];
        if (p.attempts == 0) {
          p.call = BaseCall("UploadPart", "PUT", key);
          p.call.query = {{"partNumber", std::to_string(i + 1)}, {"uploadId", upload_id}};
          p.call.file = path;
          p.call.file_off = i * part;
          p.call.file_len = std::min<uint64_t>(part, size - i * part);
          std::string md5;
          Status ds = DigestFileRange(path, p.call.file_off, p.call.file_len, &p.call.payload_hash, &md5);
          if (!ds.ok()) {
            failure = ds;
            break;
          }
          p.call.headers.emplace_back("content-md5", md5);
        }
        p.attempts++;
        HttpRequest req;  // the body is a file range: nothing big to copy
        if (Status bs = Build(p.call, &req); !bs.ok()) {
          failure = bs;
          break;
        }
        in_flight++;
        http_->Submit(std::move(req), [shared, i](Status st, HttpResponse&& resp) {
          std::lock_guard<std::mutex> l(shared->mu);
          shared->done.emplace_back(i, std::move(st), std::move(resp));
          shared->cv.notify_one();
        });
      }
      if (in_flight == 0 && (!failure.ok() || (ready.empty() && finished == n))) break;
      // Wait for a completion (or for the next retry to come due).
      std::unique_lock<std::mutex> l(shared->mu);
      if (shared->done.empty()) {
        int64_t wait_ms = 1000;
        if (failure.ok() && !ready.empty() && in_flight < window)
          wait_ms = std::max<int64_t>(0, ready.front().first - now_ms());
        shared->cv.wait_for(l, std::chrono::milliseconds(wait_ms), [&] { return !shared->done.empty(); });
      }
      while (!shared->done.empty()) {
        auto [i, st, resp] = std::move(shared->done.front());
        shared->done.pop_front();
        in_flight--;
        Part& p = parts[i];
        Status cs = Classify(p.call, st, resp, false);
        if (cs.ok()) {
          p.etag = resp.Header("etag");
          finished++;
        } else if (cs.retryable() && st.code() != Code::kIOError && p.attempts < attempts_max) {
          ready.emplace_back(now_ms() + BackoffMs(p.attempts - 1), i);
          std::sort(ready.begin(), ready.end());
        } else if (failure.ok()) {
          failure = p.attempts > 1 ? cs.Annotate("after " + std::to_string(p.attempts) + " attempts: ") : cs;
        }
      }
    }
    if (!failure.ok()) return failure;
    etags->clear();
    for (auto& p : parts) etags->push_back(std::move(p.etag));
    return Status::OK();
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
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

// A replica URL's multipart size: bytes, or a number with a K, M or G
// suffix (powers of 1024), from S3's 5 MiB minimum part to its 5 GiB
// maximum. Empty: *out keeps the configured value.
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

}  // namespace

namespace {

std::string UrlParam(const ReplicaUrl& url, const char* k) {
  auto it = url.params.find(k);
  return it == url.params.end() ? std::string() : it->second;
}

}  // namespace

Status OpenS3StoreWithProvider(const ReplicaUrl& url, std::shared_ptr<s3::CredentialProvider> creds,
                               std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                               std::shared_ptr<ObjectStore>* out) {
  if (url.scheme != "s3" && url.scheme != "gs")
    return Status::InvalidArgument("not an s3:// or gs:// URL: " + url.ToString());
  if (!http) return Status::InvalidArgument("OpenS3Store: no HTTP client");
  auto param = [&](const char* k) {
    auto it = url.params.find(k);
    return it == url.params.end() ? std::string() : it->second;
  };
  const bool gcs = url.scheme == "gs";
  std::string region = param("region");
  if (region.empty()) region = GetEnv("AWS_REGION");
  if (region.empty()) region = GetEnv("AWS_DEFAULT_REGION");
  if (region.empty()) region = gcs ? "auto" : "us-east-1";

  std::string endpoint = param("endpoint");
  if (endpoint.empty()) endpoint = gcs ? "https://storage.googleapis.com" : "https://s3." + region + ".amazonaws.com";
  std::string scheme = "https";
  if (size_t p = endpoint.find("://"); p != std::string::npos) {
    scheme = endpoint.substr(0, p);
    endpoint = endpoint.substr(p + 3);
  }
  if (scheme != "http" && scheme != "https")
    return Status::InvalidArgument("endpoint '" + param("endpoint") + "': use http:// or https://");
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  if (endpoint.empty() || endpoint.find('/') != std::string::npos)
    return Status::InvalidArgument("endpoint '" + param("endpoint") + "': expected SCHEME://HOST[:PORT] without a path");
  std::string host_only = endpoint;
  if (host_only.front() == '[') {
    host_only = host_only.substr(0, host_only.find(']') + 1);
  } else if (size_t c = host_only.rfind(':'); c != std::string::npos) {
    host_only = host_only.substr(0, c);
  }
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
