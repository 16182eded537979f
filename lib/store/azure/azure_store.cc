#include "store/azure/azure_store.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "http/http_client.h"
#include "store/azure/azure_xml.h"
#include "store/azure/shared_key.h"
#include "store/body_digest.h"
#include "store/http_retry.h"
#include "store/http_store_util.h"
#include "store/s3/s3_xml.h"
#include "util/base64.h"
#include "util/file_util.h"

namespace replite {
namespace {

using s3::KeyValues;

constexpr const char* kApiVersion = "2021-08-06";
constexpr uint64_t kMaxBlocks = 50000;  // per block blob

// One Blob service request, before signing (signed again on each attempt:
// x-ms-date must be fresh).
using Call = HttpCall;

class AzureStore final : public ObjectStore {
 public:
  AzureStore(std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config, azure::Credentials creds,
             std::unique_ptr<azure::EntraTokenSource> tokens,
             std::string raw_key, std::string source, std::string container, std::string scheme_authority,
             std::string base_path, std::string ca_file, bool verify_tls)
      : http_(std::move(http)),
        env_(env),
        config_(config),
        creds_(std::move(creds)),
        tokens_(std::move(tokens)),
        raw_key_(std::move(raw_key)),
        source_(std::move(source)),
        container_(std::move(container)),
        scheme_authority_(std::move(scheme_authority)),
        base_path_(std::move(base_path)),
        ca_file_(std::move(ca_file)),
        verify_tls_(verify_tls),
        retry_(config) {
    // A SAS's signature alone (sig=...) is as secret as the whole token.
    if (size_t p = creds_.sas_token.find("sig="); p != std::string::npos)
      sas_sig_ = creds_.sas_token.substr(p + 4, creds_.sas_token.find('&', p) - (p + 4));
    describe_ = "abs://" + creds_.account + "@" + container_ + " (endpoint " + scheme_authority_ + base_path_ +
                ", " + (tokens_ ? "Entra token" : raw_key_.empty() ? "SAS" : "Shared Key") + ")";
  }

  Status Put(const std::string& key, const std::string& data, const PutOptions& opts, std::string* etag) override {
    Call c = BlobCall("PutBlob", "PUT", key);
    c.headers.emplace_back("content-md5", ContentMd5(data));
    c.headers.emplace_back("x-ms-blob-type", "BlockBlob");
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
      return PutBlocks(key, local_path, size, opts);
    Call c = BlobCall("PutBlob", "PUT", key);
    std::string sha, md5;
    s = DigestFileRange(local_path, 0, size, &sha, &md5);
    if (!s.ok()) return s;
    c.headers.emplace_back("content-md5", md5);
    c.headers.emplace_back("x-ms-blob-type", "BlockBlob");
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
    Call c = BlobCall("GetBlob", "GET", key);
    const std::string range = RangeValue(offset, length);
    if (!range.empty()) c.headers.emplace_back("x-ms-range", range);
    HttpResponse r;
    Status s = Do(c, &r, /*ok_416=*/true);
    if (s.ok()) TakeRange(&r, offset, length, out);
    return s;
  }

  Status Head(const std::string& key, ObjectInfo* out) override {
    Call c = BlobCall("GetBlobProperties", "HEAD", key);
    HttpResponse r;
    Status s = Do(c, &r);
    if (s.ok()) InfoFromHeaders(key, r, out);
    return s;
  }

  Status List(const std::string& prefix, std::vector<ObjectInfo>* out) override {
    out->clear();
    std::string marker;
    while (true) {
      Call c = BlobCall("ListBlobs", "GET", "");
      c.query = {{"restype", "container"}, {"comp", "list"}};
      if (!prefix.empty()) c.query.emplace_back("prefix", prefix);
      if (config_.list_max_keys > 0 && config_.list_max_keys != 5000)
        c.query.emplace_back("maxresults", std::to_string(config_.list_max_keys));
      if (!marker.empty()) c.query.emplace_back("marker", marker);
      HttpResponse r;
      Status s = Do(c, &r);
      if (!s.ok()) return s;
      azure::ListBlobsPage page;
      if (!(s = azure::ParseListBlobs(r.body, &page)).ok())
        return s.Annotate(Redact(describe_) + " prefix '" + prefix + "': ");
      for (auto& o : page.objects) out->push_back(std::move(o));
      if (page.next_marker.empty()) break;
      if (page.next_marker == marker)
        return Status::Corruption("ListBlobs " + Container() + ": the service repeated a marker");
      marker = page.next_marker;
    }
    std::sort(out->begin(), out->end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return Status::OK();
  }

  // The Blob service has no multi-object delete outside multipart/mixed
  // batches, so each key is one Delete Blob, up to 16 in flight at once
  // through the shared pool. A key that does not exist is not an error.
  Status Delete(const std::vector<std::string>& keys) override {
    std::vector<Call> calls(keys.size());
    return retry_.RunConcurrent(
        http_.get(), keys.size(), std::min(16, std::max(1, config_.max_connections_per_host)),
        [&](size_t i, int attempt, HttpRequest* req) {
          if (attempt == 0) calls[i] = BlobCall("DeleteBlob", "DELETE", keys[i]);
          return BuildWithToken(calls[i], req);
        },
        [&](size_t i, const Status& t, const HttpResponse& r) {
          Status s = Classify(calls[i], t, r);
          return s.code() == Code::kNotFound && !ContainerMissing(r) ? Status::OK() : s;
        },
        [](size_t, const HttpResponse&) {});
  }

  std::string Describe() const override { return describe_; }

  Status CreateContainer() {
    Call c = BlobCall("CreateContainer", "PUT", "");
    c.query = {{"restype", "container"}};
    HttpResponse r;
    Status s = Do(c, &r);
    if (s.code() == Code::kFailedPrecondition && ErrorCode(r) == "ContainerAlreadyExists") return Status::OK();
    return s;
  }

 private:
  Call BlobCall(const char* op, const char* method, const std::string& key) const {
    Call c;
    c.op = op;
    c.method = method;
    c.key = key;
    return c;
  }

  static void AddConditions(const PutOptions& opts, Call* c) { AddPutConditions(opts, &c->headers); }

  std::string Container() const { return "abs://" + creds_.account + "@" + container_; }
  std::string Where(const Call& c) const { return c.op + " " + Container() + (c.key.empty() ? "" : "/" + c.key); }

  // Removes any credential material an error text might echo back.
  std::string Redact(std::string msg) const {
    return RedactSecrets(std::move(msg), {&creds_.key, &creds_.sas_token, &sas_sig_});
  }

  // Builds and signs the HTTP request for one attempt.
  void Build(const Call& c, const std::string& bearer, HttpRequest* req) const {
    std::string path = base_path_ + "/" + s3::UriEncode(container_, false);
    if (!c.key.empty()) path += "/" + s3::UriEncode(c.key, true);
    std::string query;
    for (const auto& [k, v] : c.query)
      query += (query.empty() ? "" : "&") + s3::UriEncode(k, false) + "=" + s3::UriEncode(v, false);
    *req = HttpRequest();
    req->headers = c.headers;
    req->headers.emplace_back("x-ms-date", HttpDate(env_->NowMicros()));
    req->headers.emplace_back("x-ms-version", kApiVersion);
    if (tokens_) {
      req->headers.emplace_back("authorization", "Bearer " + bearer);
    } else if (!raw_key_.empty()) {
      const std::string to_sign =
          azure::SharedKeyStringToSign(c.method, req->headers, c.BodySize(), creds_.account, path, c.query);
      req->headers.emplace_back("authorization", azure::SharedKeyAuthorization(creds_.account, raw_key_, to_sign));
    } else {
      query += (query.empty() ? "" : "&") + creds_.sas_token;  // HttpClient never echoes a URL's query
    }
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

  Status BuildWithToken(const Call& c, HttpRequest* req) const {
    std::string bearer;
    if (tokens_) {
      Status ts = tokens_->Token(&bearer);
      if (!ts.ok()) return ts.Annotate(Where(c) + ": ");
    }
    Build(c, bearer, req);
    return Status::OK();
  }

  // The service's error code: the x-ms-error-code header (also on HEAD,
  // which has no body), else the <Error><Code> of the body.
  static std::string ErrorCode(const HttpResponse& r) {
    std::string code = r.Header("x-ms-error-code");
    s3::S3Error e;
    if (code.empty() && !r.body.empty() && s3::ParseS3Error(r.body, &e)) code = e.code;
    return code;
  }
  static bool ContainerMissing(const HttpResponse& r) { return ErrorCode(r) == "ContainerNotFound"; }

  // Maps the outcome of one attempt to a Status with a message that names
  // the container, the blob and the likely fix.
  Status Classify(const Call& c, const Status& transport, const HttpResponse& r, bool ok_416 = false) const {
    const std::string where = Where(c);
    if (!transport.ok()) return Status(transport.code(), Redact(where + ": " + transport.message()));
    const long st = r.status;
    if (st >= 200 && st < 300) return Status::OK();
    if (st == 416 && ok_416) return Status::OK();
    s3::S3Error e;
    const bool has_error = !r.body.empty() && s3::ParseS3Error(r.body, &e);
    const std::string code = ErrorCode(r);
    std::string message = has_error ? e.message : "";
    message = message.substr(0, message.find('\n'));  // drop the RequestId/Time lines
    if (!message.empty() && message.back() == '\r') message.pop_back();
    std::string detail = code.empty() ? "HTTP " + std::to_string(st)
                                      : code + (message.empty() ? "" : ": " + message) + " (HTTP " +
                                            std::to_string(st) + ")";
    auto msg = [&](const std::string& hint) { return Redact(where + ": " + detail + (hint.empty() ? "" : "; " + hint)); };

    if (code == "ContainerNotFound")
      return Status::NotFound(Redact("container '" + container_ + "' does not exist in storage account '" +
                                     creds_.account + "': create it or fix the URL (" + where + ": " + detail + ")"));
    // AuthorizationFailure is also what azurite answers for a bad signature
    // ("Server failed to authenticate the request").
    const bool auth_failed = code == "AuthenticationFailed" || code == "InvalidAuthenticationInfo" ||
                             code == "NoAuthenticationInformation" || st == 401 ||
                             (code == "AuthorizationFailure" && message.find("authenticate") != std::string::npos);
    if (auth_failed)
      return Status::Unauthenticated(msg("check " + source_ +
                                         " (the account's key, SAS token or connection string; one of "
                                         "AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, "
                                         "AZURE_STORAGE_CONNECTION_STRING), its expiry, and that the clock is right"));
    if (st == 403)
      return Status::PermissionDenied(
          msg("the credentials are valid but not allowed to do this: a SAS needs read, add, create, write, delete "
              "and list permissions (sp=racwdl) on the container; an identity needs the role Storage Blob Data "
              "Contributor"));
    if (st == 412 || code == "ConditionNotMet" || code == "BlobAlreadyExists" || code == "ContainerAlreadyExists" ||
        (st == 409 && c.op == "PutBlob"))
      return Status::FailedPrecondition(msg("the blob changed or already exists (conditional write lost)"));
    if (st == 404 || code == "BlobNotFound")
      return Status::NotFound(
          msg(c.key.empty() ? "" : "no blob '" + c.key + "' in container '" + container_ + "'"));
    if (st >= 500 || st == 429 || st == 0 || code == "ServerBusy" || code == "OperationTimedOut" ||
        code == "InternalError")
      return Status::Unavailable(msg(""));
    if (code == "Md5Mismatch" || code == "InvalidMd5")
      return Status::Unavailable(msg("the body was damaged in transit; retrying"));
    if (code == "RequestBodyTooLarge" || code == "InvalidBlockList" || code == "BlockCountExceedsLimit")
      return Status::InvalidArgument(msg("check the replica URL's multipart-threshold / multipart-part-size"));
    return Status::InvalidArgument(msg(""));
  }

  // One request with retries (HttpRetry's rules). *r receives the last
  // response.
  Status Do(const Call& c, HttpResponse* r, bool ok_416 = false) {
    std::string bearer;
    if (tokens_) {
      Status ts = tokens_->Token(&bearer);  // valid for minutes: enough for every retry
      if (!ts.ok()) return ts.Annotate(Where(c) + ": ");
    }
    return retry_.Do(
        http_.get(),
        [&](HttpRequest* req) {
          Build(c, bearer, req);
          return Status::OK();
        },
        [&](const Status& t, const HttpResponse& resp) { return Classify(c, t, resp, ok_416); }, r);
  }

  // Put Block for each multipart_part_size piece, up to
  // multipart_concurrency in flight through the shared pool, then Put Block
  // List with the put's conditions.
  Status PutBlocks(const std::string& key, const std::string& path, uint64_t size, const PutOptions& opts) {
    const uint64_t block = config_.multipart_part_size;
    const size_t n = static_cast<size_t>((size + block - 1) / block);
    if (n > kMaxBlocks)
      return Status::InvalidArgument("PutFile " + Container() + "/" + key + ": " + std::to_string(n) +
                                     " blocks exceed the Azure limit of 50000: raise multipart-part-size= in the "
                                     "replica URL");
    std::vector<std::string> ids(n);
    for (size_t i = 0; i < n; i++) {
      char id[32];
      snprintf(id, sizeof id, "replite-block-%06zu", i);  // every id the same length, as required
      ids[i] = Base64Encode(id);
    }
    std::vector<Call> calls(n);
    auto prepare = [&](size_t i, int attempt, HttpRequest* req) {
      Call& c = calls[i];
      if (attempt == 0) {  // digest the block only when it first starts
        c = BlobCall("PutBlock", "PUT", key);
        c.query = {{"comp", "block"}, {"blockid", ids[i]}};
        c.file = path;
        c.file_off = i * block;
        c.file_len = std::min<uint64_t>(block, size - i * block);
        std::string sha, md5;
        Status ds = DigestFileRange(path, c.file_off, c.file_len, &sha, &md5);
        if (!ds.ok()) return ds;
        c.headers.emplace_back("content-md5", md5);
      }
      return BuildWithToken(c, req);  // the body is a file range: nothing big to copy
    };
    Status s = retry_.RunConcurrent(
        http_.get(), n, config_.multipart_concurrency, prepare,
        [&](size_t i, const Status& t, const HttpResponse& r) { return Classify(calls[i], t, r); },
        [](size_t, const HttpResponse&) {});
    if (!s.ok()) return s;
    const std::string body = azure::BuildBlockList(ids);
    Call commit = BlobCall("PutBlockList", "PUT", key);
    commit.query = {{"comp", "blocklist"}};
    commit.headers.emplace_back("content-md5", ContentMd5(body));
    commit.headers.emplace_back("content-type", "application/xml");
    AddConditions(opts, &commit);
    commit.body = &body;
    HttpResponse r;
    return Do(commit, &r);
  }

  std::shared_ptr<HttpClient> http_;
  Env* env_;
  const StoreConfig config_;
  const azure::Credentials creds_;
  const std::unique_ptr<azure::EntraTokenSource> tokens_;  // Entra auth; nullptr with a key or SAS
  const std::string raw_key_;  // decoded Shared Key; "" with a SAS or a token
  const std::string source_;   // where the credentials came from, for messages
  const std::string container_;
  const std::string scheme_authority_;  // "https://acct.blob.core.windows.net" or "http://127.0.0.1:10000"
  const std::string base_path_;         // "" or "/ACCOUNT" (emulator, path style)
  const std::string ca_file_;
  const bool verify_tls_;
  HttpRetry retry_;
  std::string sas_sig_;  // the sig= value of the SAS token, redacted too
  std::string describe_;
};

Status Open(const ReplicaUrl& url, const azure::Credentials& creds_in, const std::string& source,
            std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
            std::unique_ptr<AzureStore>* out) {
  if (url.scheme != "abs") return Status::InvalidArgument("not an abs:// URL: " + url.ToString());
  if (!http) return Status::InvalidArgument("OpenAzureStore: no HTTP client");
  azure::Credentials creds = creds_in;
  if (creds.account.empty()) creds.account = url.account;
  if (creds.account.empty())
    return Status::InvalidArgument("no storage account: write abs://ACCOUNT@CONTAINER/path");
  if (!url.account.empty() && url.account != creds.account)
    return Status::InvalidArgument("the replica URL names storage account '" + url.account +
                                   "' but the credentials are for account '" + creds.account + "'");
  std::string raw_key;
  if (!creds.key.empty() && !Base64Decode(creds.key, &raw_key))
    return Status::InvalidArgument("the Shared Key for storage account '" + creds.account +
                                   "' is not base64: copy the account's access key exactly");
  std::unique_ptr<azure::EntraTokenSource> tokens;
  if (raw_key.empty() && creds.sas_token.empty() && creds.entra.flow != azure::EntraConfig::Flow::kNone) {
    azure::EntraConfig entra = creds.entra;
    if (entra.ca_file.empty()) entra.ca_file = UrlParam(url, "ca-file");
    tokens = std::make_unique<azure::EntraTokenSource>(entra, http, env);
  }
  if (raw_key.empty() && creds.sas_token.empty() && !tokens)
    return Status::Unauthenticated("no Shared Key and no SAS token for storage account '" + creds.account +
                                   "': set AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or "
                                   "AZURE_STORAGE_CONNECTION_STRING");

  std::string endpoint_value = UrlParam(url, "endpoint");
  if (endpoint_value.empty()) endpoint_value = creds.blob_endpoint;
  if (endpoint_value.empty()) endpoint_value = "https://" + creds.account + ".blob.core.windows.net";
  Endpoint ep;
  Status s = ParseEndpoint(endpoint_value, &ep);
  if (!s.ok()) return s;
  std::string base_path = ep.path;
  if (base_path.empty() && IsIpOrLocalhost(ep.host)) base_path = "/" + creds.account;  // emulator, path style
  const std::string skip = UrlParam(url, "insecure-skip-verify");
  if (!skip.empty() && skip != "true" && skip != "false")
    return Status::InvalidArgument("insecure-skip-verify must be true or false, not '" + skip + "'");
  StoreConfig cfg = config;
  s = SizeParam("multipart-threshold", UrlParam(url, "multipart-threshold"), &cfg.multipart_threshold);
  if (s.ok()) s = SizeParam("multipart-part-size", UrlParam(url, "multipart-part-size"), &cfg.multipart_part_size);
  if (!s.ok()) return s;
  *out = std::make_unique<AzureStore>(std::move(http), env ? env : Env::Default(), cfg, creds, std::move(tokens),
                                      raw_key, source,
                                      url.bucket, ep.scheme + "://" + ep.authority, base_path,
                                      UrlParam(url, "ca-file"), skip != "true");
  return Status::OK();
}

}  // namespace

Status OpenAzureStoreWithCredentials(const ReplicaUrl& url, const azure::Credentials& creds,
                                     std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                                     std::shared_ptr<ObjectStore>* out) {
  std::unique_ptr<AzureStore> store;
  const std::string source = !creds.key.empty()         ? "the Shared Key"
                             : !creds.sas_token.empty() ? "the SAS token"
                                                        : "Entra " + creds.entra.Describe();
  Status s = Open(url, creds, source, std::move(http), env, config, &store);
  if (s.ok()) *out = std::move(store);
  return s;
}

Status OpenAzureStore(const ReplicaUrl& url, std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                      std::shared_ptr<ObjectStore>* out) {
  azure::Credentials creds;
  std::string source;
  Status s = azure::LoadCredentials(url.account, &creds, &source);
  if (!s.ok()) return s.Annotate("abs://" + (url.account.empty() ? "" : url.account + "@") + url.bucket + ": ");
  std::unique_ptr<AzureStore> store;
  s = Open(url, creds, source, std::move(http), env, config, &store);
  if (s.ok()) *out = std::move(store);
  return s;
}

Status CreateAzureContainer(const ReplicaUrl& url, const azure::Credentials& creds, std::shared_ptr<HttpClient> http,
                            const StoreConfig& config) {
  std::unique_ptr<AzureStore> store;
  Status s = Open(url, creds, "the Shared Key", std::move(http), nullptr, config, &store);
  return s.ok() ? store->CreateContainer() : s;
}

}  // namespace replite
