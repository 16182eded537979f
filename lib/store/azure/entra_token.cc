#include "store/azure/entra_token.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "http/http_client.h"
#include "store/s3/sigv4.h"  // UriEncode

namespace replite::azure {
namespace {

constexpr const char* kScope = "https://storage.azure.com/.default";
constexpr const char* kResource = "https://storage.azure.com/";

// The value of a top-level member of a flat JSON object, as a string
// (string values unescaped for \" \\ \/ only; numbers as written). False
// when absent. Token responses are flat objects of strings and numbers.
bool JsonMember(const std::string& doc, const std::string& name, std::string* out) {
  const std::string quoted = "\"" + name + "\"";
  for (size_t p = doc.find(quoted); p != std::string::npos; p = doc.find(quoted, p + 1)) {
    size_t i = p + quoted.size();
    while (i < doc.size() && std::isspace(static_cast<unsigned char>(doc[i]))) i++;
    if (i >= doc.size() || doc[i] != ':') continue;  // a value that happens to equal the name
    i++;
    while (i < doc.size() && std::isspace(static_cast<unsigned char>(doc[i]))) i++;
    out->clear();
    if (i < doc.size() && doc[i] == '"') {
      for (i++; i < doc.size() && doc[i] != '"'; i++) {
        if (doc[i] == '\\' && i + 1 < doc.size()) i++;
        out->push_back(doc[i]);
      }
      return i < doc.size();
    }
    while (i < doc.size() && (std::isdigit(static_cast<unsigned char>(doc[i])) || doc[i] == '-')) out->push_back(doc[i++]);
    return !out->empty();
  }
  return false;
}

std::string FormEncode(const std::string& v) { return s3::UriEncode(v, false); }

}  // namespace

std::string EntraConfig::Describe() const {
  if (flow == Flow::kWorkloadIdentity)
    return "workload identity (AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID, AZURE_TENANT_ID)";
  if (flow == Flow::kManagedIdentity)
    return std::string("managed identity (") + (client_id.empty() ? "system-assigned" : "AZURE_CLIENT_ID") + ")";
  return "no Entra identity";
}

EntraTokenSource::EntraTokenSource(EntraConfig config, std::shared_ptr<HttpClient> http, Env* env)
    : config_(std::move(config)),
      http_(std::move(http)),
      cache_([this](std::string* token, int64_t* expires_in_s) { return Fetch(token, expires_in_s); }, env) {}

Status EntraTokenSource::Fetch(std::string* token, int64_t* expires_in_s) {
  const std::string what = config_.Describe();
  HttpRequest req;
  req.timeout_ms = 30000;
  req.ca_file = config_.ca_file;
  if (config_.flow == EntraConfig::Flow::kWorkloadIdentity) {
    std::ifstream f(config_.federated_token_file);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string assertion = ss.str();
    while (!assertion.empty() && std::isspace(static_cast<unsigned char>(assertion.back()))) assertion.pop_back();
    if (!f || assertion.empty())
      return Status::Unauthenticated("Entra " + what + ": cannot read the federated token file '" +
                                     config_.federated_token_file + "': check AZURE_FEDERATED_TOKEN_FILE");
    std::string authority = config_.authority_host.empty() ? "https://login.microsoftonline.com" : config_.authority_host;
    while (!authority.empty() && authority.back() == '/') authority.pop_back();
    req.method = "POST";
    req.url = authority + "/" + FormEncode(config_.tenant_id) + "/oauth2/v2.0/token";
    req.headers = {{"content-type", "application/x-www-form-urlencoded"}};
    req.body = "grant_type=client_credentials&client_id=" + FormEncode(config_.client_id) +
               "&client_assertion_type=" + FormEncode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") +
               "&client_assertion=" + FormEncode(assertion) + "&scope=" + FormEncode(kScope);
  } else if (config_.flow == EntraConfig::Flow::kManagedIdentity) {
    std::string imds = config_.imds_endpoint.empty() ? "http://169.254.169.254" : config_.imds_endpoint;
    while (!imds.empty() && imds.back() == '/') imds.pop_back();
    req.method = "GET";
    req.url = imds + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + FormEncode(kResource);
    if (!config_.client_id.empty()) req.url += "&client_id=" + FormEncode(config_.client_id);
    req.headers = {{"metadata", "true"}};
  } else {
    return Status::Unauthenticated("no Entra identity configured");
  }
  HttpResponse r;
  Status s = http_->Perform(req, &r);
  if (!s.ok()) return Status(s.code(), "Entra " + what + ": token request failed: " + s.message());
  if (r.status != 200) {
    std::string err, desc;
    JsonMember(r.body, "error", &err);
    JsonMember(r.body, "error_description", &desc);
    desc = desc.substr(0, desc.find('\n')).substr(0, 300);
    const std::string detail = "HTTP " + std::to_string(r.status) + (err.empty() ? "" : " " + err) +
                               (desc.empty() ? "" : ": " + desc);
    if (r.status >= 500 || r.status == 429)
      return Status::Unavailable("Entra " + what + ": token endpoint answered " + detail);
    return Status::Unauthenticated("Entra " + what + ": token endpoint refused (" + detail +
                                   "): check AZURE_CLIENT_ID, AZURE_TENANT_ID and the identity's federation");
  }
  std::string expires;
  if (!JsonMember(r.body, "access_token", token) || token->empty() || !JsonMember(r.body, "expires_in", &expires))
    return Status::Corruption("Entra " + what + ": the token response has no access_token or expires_in");
  *expires_in_s = std::max<int64_t>(1, std::strtoll(expires.c_str(), nullptr, 10));
  return Status::OK();
}

}  // namespace replite::azure
