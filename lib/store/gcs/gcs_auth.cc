#include "store/gcs/gcs_auth.h"

#include <cstdlib>

namespace replite::gcs {
namespace {

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

const char* kNoCredentials =
    "no Google credentials for gs://: set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, or "
    "REPLITE_GCS_AUTH=metadata (or GCE_METADATA_HOST) on Google Cloud to use the metadata server's account, or "
    "use HMAC keys through the S3-interoperable API (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)";

}  // namespace

Status ChooseGcsAuth(const ReplicaUrl& url, GcsAuthKind* kind, GcsTokenConfig* tokens) {
  *tokens = GcsTokenConfigFromEnv();
  const std::string mode = GetEnv("REPLITE_GCS_AUTH");
  const bool hmac_configured = !GetEnv("AWS_ACCESS_KEY_ID").empty() || url.params.count("profile") > 0;
  if (mode == "hmac" || (mode.empty() && hmac_configured)) {
    *kind = GcsAuthKind::kHmac;
    return Status::OK();
  }
  if (!mode.empty() && mode != "oauth" && mode != "metadata")
    return Status::InvalidArgument("REPLITE_GCS_AUTH='" + mode +
                                   "' is not known: use hmac, oauth (GOOGLE_APPLICATION_CREDENTIALS) or metadata");
  if (mode == "metadata") tokens->flow = GcsTokenConfig::Flow::kMetadata;  // even with a key file set
  if (url.params.count("ca-file")) tokens->ca_file = url.params.at("ca-file");
  *kind = GcsAuthKind::kOAuth;
  if (tokens->flow == GcsTokenConfig::Flow::kNone) return Status::Unauthenticated(kNoCredentials);
  return Status::OK();
}

std::shared_ptr<GcsTokenSource> GcsTokenSources::For(const GcsTokenConfig& config, std::shared_ptr<HttpClient> http,
                                                     Env* env) {
  const std::string id = std::to_string(static_cast<int>(config.flow)) + "|" + config.key_file + "|" +
                         config.metadata_host + "|" + config.ca_file;
  std::lock_guard<std::mutex> l(mu_);
  auto& s = sources_[id];
  if (!s) s = std::make_shared<GcsTokenSource>(config, std::move(http), env);
  return s;
}

}  // namespace replite::gcs
