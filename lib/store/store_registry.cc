#include "store/store_registry.h"

#include "http/http_client.h"
#include "store/azure/azure_store.h"
#include "store/file_store.h"
#include "store/gcs/gcs_auth.h"
#include "store/gcs/gcs_store.h"
#include "store/s3/credential_provider.h"
#include "store/s3/s3_store.h"
#include "store/sftp/sftp_store.h"

namespace replite {

StoreRegistry::StoreRegistry(Env* env, StoreConfig config) : env_(env), config_(std::move(config)) {}
StoreRegistry::~StoreRegistry() = default;

HttpClient* StoreRegistry::http() {
  std::lock_guard<std::mutex> l(mu_);
  return http_.get();
}

Status StoreRegistry::Open(const ReplicaUrl& url, std::shared_ptr<ObjectStore>* out) {
  std::lock_guard<std::mutex> l(mu_);
  const std::string id = url.StoreIdentity();
  if (auto it = stores_.find(id); it != stores_.end()) {
    *out = it->second;
    return Status::OK();
  }
  std::shared_ptr<ObjectStore> store;
  if (url.scheme == "file") {
    store = NewFileStore("/");
  } else if (url.scheme == "sftp") {
    // One store (one bounded pool of SSH sessions) per server and user.
    Status s = OpenSftpStore(url, env_, config_, &store);
    if (!s.ok()) return s;
  } else if (url.scheme == "s3" || url.scheme == "gs" || url.scheme == "abs") {
    // Every HTTP store shares one client: one thread, one connection pool.
    if (!http_) {
      HttpClientOptions o;
      o.max_connections = config_.max_connections;
      o.max_connections_per_host = config_.max_connections_per_host;
      o.connect_timeout_ms = config_.connect_timeout_ms;
      o.low_speed_time_s = config_.low_speed_time_s;
      o.ca_file = config_.ca_file;
      o.verify_tls = config_.verify_tls;
      Status s = HttpClient::Open(o, &http_);
      if (!s.ok()) return s;
    }
    Status s;
    gcs::GcsAuthKind gcs_auth = gcs::GcsAuthKind::kHmac;
    gcs::GcsTokenConfig gcs_token;
    if (url.scheme == "gs" && !(s = gcs::ChooseGcsAuth(url, &gcs_auth, &gcs_token)).ok())
      return s.Annotate("gs://" + url.bucket + ": ");
    if (url.scheme == "abs") {
      s = OpenAzureStore(url, http_, env_, config_, &store);
    } else if (url.scheme == "gs" && gcs_auth == gcs::GcsAuthKind::kOAuth) {
      // Bearer tokens: one per credential, whatever the number of buckets.
      if (!gcs_tokens_) gcs_tokens_ = std::make_shared<gcs::GcsTokenSources>();
      s = OpenGcsStore(url, gcs_tokens_->For(gcs_token, http_, env_), http_, env_, config_, &store);
    } else {
      if (!s3_credentials_) s3_credentials_ = std::make_shared<s3::CredentialCache>();
      s = OpenS3Store(url, http_, env_, config_, s3_credentials_.get(), &store);
    }
    if (!s.ok()) return s;
  } else {
    return Status::NotSupported("replica URL scheme '" + url.scheme + "' is not built into this version");
  }
  stores_[id] = store;
  *out = store;
  return Status::OK();
}

HttpClient* StoreRegistry::HttpLocked() { return http_.get(); }

}  // namespace replite
