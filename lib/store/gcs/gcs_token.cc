#include "store/gcs/gcs_token.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "http/http_client.h"
#include "store/gcs/service_account_jwt.h"
#include "store/s3/flat_json.h"
#include "store/s3/sigv4.h"  // UriEncode

namespace replite::gcs {
namespace {

constexpr const char* kDefaultTokenUri = "https://oauth2.googleapis.com/token";
constexpr const char* kDefaultMetadataHost = "metadata.google.internal";

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string FormEncode(const std::string& v) { return s3::UriEncode(v, false); }

}  // namespace

std::string GcsTokenConfig::Describe() const {
  if (flow == Flow::kServiceAccount) return "service account key file " + key_file + " (GOOGLE_APPLICATION_CREDENTIALS)";
  if (flow == Flow::kMetadata)
    return "GCE metadata server " + (metadata_host.empty() ? std::string(kDefaultMetadataHost) : metadata_host);
  return "no Google credentials";
}

GcsTokenConfig GcsTokenConfigFromEnv() {
  GcsTokenConfig c;
  c.key_file = GetEnv("GOOGLE_APPLICATION_CREDENTIALS");
  c.metadata_host = GetEnv("GCE_METADATA_HOST");
  if (!c.key_file.empty()) {
    c.flow = GcsTokenConfig::Flow::kServiceAccount;
  } else if (!c.metadata_host.empty() || GetEnv("REPLITE_GCS_AUTH") == "metadata") {
    c.flow = GcsTokenConfig::Flow::kMetadata;
  }
  return c;
}

GcsTokenSource::GcsTokenSource(GcsTokenConfig config, std::shared_ptr<HttpClient> http, Env* env)
    : config_(std::move(config)),
      http_(std::move(http)),
      env_(env ? env : Env::Default()),
      cache_([this](std::string* token, int64_t* expires_in_s) { return Fetch(token, expires_in_s); }, env_) {}

Status GcsTokenSource::ServiceAccountRequest(HttpRequest* req) {
  const std::string what = config_.Describe();
  std::ifstream f(config_.key_file);
  std::stringstream ss;
  ss << f.rdbuf();
  if (!f)
    return Status::Unauthenticated("Google " + what + ": cannot read the file: check GOOGLE_APPLICATION_CREDENTIALS");
  std::map<std::string, std::string> key;
  Status s = s3::ParseFlatJson(ss.str(), &key);
  if (!s.ok()) return Status::Unauthenticated("Google " + what + ": not a JSON key file: " + s.message());
  if (key["type"] != "service_account" || key["client_email"].empty() || key["private_key"].empty())
    return Status::Unauthenticated("Google " + what +
                                   ": not a service account key (wants type \"service_account\", client_email and "
                                   "private_key): download one with 'gcloud iam service-accounts keys create'");
  JwtClaims claims;
  claims.issuer = key["client_email"];
  claims.scope = kScope;
  claims.audience = key["token_uri"].empty() ? kDefaultTokenUri : key["token_uri"];
  claims.issued_at_s = env_->NowMicros() / 1000000;
  std::string jwt;
  s = SignServiceAccountJwt(claims, key["private_key"], &jwt);
  if (!s.ok()) return Status::Unauthenticated("Google " + what + ": " + s.message());
  req->method = "POST";
  req->url = claims.audience;
  req->headers = {{"content-type", "application/x-www-form-urlencoded"}};
  req->body = "grant_type=" + FormEncode("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion=" + jwt;
  return Status::OK();
}

Status GcsTokenSource::Fetch(std::string* token, int64_t* expires_in_s) {
  const std::string what = config_.Describe();
  HttpRequest req;
  req.timeout_ms = 30000;
  req.ca_file = config_.ca_file;
  if (config_.flow == GcsTokenConfig::Flow::kServiceAccount) {
    Status s = ServiceAccountRequest(&req);
    if (!s.ok()) return s;
  } else if (config_.flow == GcsTokenConfig::Flow::kMetadata) {
    std::string host = config_.metadata_host.empty() ? kDefaultMetadataHost : config_.metadata_host;
    if (host.find("://") == std::string::npos) host = "http://" + host;
    while (!host.empty() && host.back() == '/') host.pop_back();
    req.url = host + "/computeMetadata/v1/instance/service-accounts/default/token";
    req.headers = {{"metadata-flavor", "Google"}};
  } else {
    return Status::Unauthenticated(
        "no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, or "
        "REPLITE_GCS_AUTH=metadata on Google Cloud");
  }
  HttpResponse r;
  Status s = http_->Perform(req, &r);
  if (!s.ok()) return Status(s.code(), "Google " + what + ": token request failed: " + s.message());
  std::map<std::string, std::string> body;
  const bool json = s3::ParseFlatJson(r.body, &body).ok();
  if (r.status != 200) {
    std::string detail = "HTTP " + std::to_string(r.status);
    if (json && !body["error"].empty()) detail += " " + body["error"];
    if (json && !body["error_description"].empty())
      detail += ": " + body["error_description"].substr(0, body["error_description"].find('\n')).substr(0, 300);
    if (r.status >= 500 || r.status == 429)
      return Status::Unavailable("Google " + what + ": token endpoint answered " + detail);
    return Status::Unauthenticated("Google " + what + ": token endpoint refused (" + detail +
                                   "): check that the key is current and the account exists");
  }
  if (!json || body["access_token"].empty() || body["expires_in"].empty())
    return Status::Corruption("Google " + what + ": the token response has no access_token or expires_in");
  *token = body["access_token"];
  *expires_in_s = std::strtoll(body["expires_in"].c_str(), nullptr, 10);
  return Status::OK();
}

}  // namespace replite::gcs
