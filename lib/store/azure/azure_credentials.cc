#include "store/azure/azure_credentials.h"

#include <cstdlib>
#include <map>

#include "util/base64.h"

namespace replite::azure {
namespace {

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// azurite's published development account (the same in every emulator
// install; not a secret).
constexpr const char* kDevAccount = "devstoreaccount1";
constexpr const char* kDevKey =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

Status CheckKey(const std::string& key, const char* where) {
  std::string raw;
  if (key.empty() || !Base64Decode(key, &raw))
    return Status::InvalidArgument(std::string(where) + " is not a base64 Shared Key: copy the storage account's "
                                   "access key (key1 or key2) exactly");
  return Status::OK();
}

std::string StripQuestionMark(std::string sas) {
  if (!sas.empty() && sas.front() == '?') sas.erase(0, 1);
  return sas;
}

}  // namespace

Status ParseConnectionString(const std::string& cs, Credentials* out) {
  *out = Credentials();
  std::map<std::string, std::string> kv;
  size_t pos = 0;
  while (pos <= cs.size()) {
    size_t semi = cs.find(';', pos);
    std::string part = cs.substr(pos, semi == std::string::npos ? std::string::npos : semi - pos);
    pos = semi == std::string::npos ? cs.size() + 1 : semi + 1;
    while (!part.empty() && (part.back() == ' ' || part.back() == '\n' || part.back() == '\r')) part.pop_back();
    while (!part.empty() && part.front() == ' ') part.erase(0, 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');  // values (keys, SAS) contain '=' themselves
    if (eq == std::string::npos || eq == 0)
      return Status::InvalidArgument("AZURE_STORAGE_CONNECTION_STRING: expected Key=Value pairs separated by ';'");
    kv[part.substr(0, eq)] = part.substr(eq + 1);
  }
  auto get = [&](const char* k) {
    auto it = kv.find(k);
    return it == kv.end() ? std::string() : it->second;
  };
  if (get("UseDevelopmentStorage") == "true") {
    out->account = kDevAccount;
    out->key = kDevKey;
    out->blob_endpoint = "http://127.0.0.1:10000/" + std::string(kDevAccount);
    return Status::OK();
  }
  out->account = get("AccountName");
  out->key = get("AccountKey");
  out->sas_token = StripQuestionMark(get("SharedAccessSignature"));
  out->blob_endpoint = get("BlobEndpoint");
  if (out->blob_endpoint.empty() && !out->account.empty()) {
    std::string proto = get("DefaultEndpointsProtocol");
    std::string suffix = get("EndpointSuffix");
    out->blob_endpoint = (proto.empty() ? "https" : proto) + "://" + out->account + ".blob." +
                         (suffix.empty() ? "core.windows.net" : suffix);
  }
  if (out->key.empty() && out->sas_token.empty())
    return Status::InvalidArgument("AZURE_STORAGE_CONNECTION_STRING has neither AccountKey nor "
                                   "SharedAccessSignature: copy the whole connection string from the portal");
  if (!out->key.empty()) {
    if (out->account.empty())
      return Status::InvalidArgument("AZURE_STORAGE_CONNECTION_STRING has an AccountKey but no AccountName");
    Status s = CheckKey(out->key, "the AccountKey of AZURE_STORAGE_CONNECTION_STRING");
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status LoadCredentials(const std::string& url_account, Credentials* out, std::string* source) {
  *out = Credentials();
  const std::string cs = GetEnv("AZURE_STORAGE_CONNECTION_STRING");
  if (!cs.empty()) {
    *source = "AZURE_STORAGE_CONNECTION_STRING";
    Status s = ParseConnectionString(cs, out);
    if (!s.ok()) return s;
    if (out->account.empty()) out->account = url_account;
    if (!url_account.empty() && out->account != url_account)
      return Status::InvalidArgument("the replica URL names storage account '" + url_account +
                                     "' but AZURE_STORAGE_CONNECTION_STRING is for account '" + out->account +
                                     "': fix one of them");
    if (out->account.empty())
      return Status::InvalidArgument("no storage account: write abs://ACCOUNT@CONTAINER/path");
    return Status::OK();
  }
  out->account = url_account.empty() ? GetEnv("AZURE_STORAGE_ACCOUNT") : url_account;
  if (out->account.empty())
    return Status::InvalidArgument("no storage account: write abs://ACCOUNT@CONTAINER/path (or set "
                                   "AZURE_STORAGE_ACCOUNT or AZURE_STORAGE_CONNECTION_STRING)");
  out->key = GetEnv("AZURE_STORAGE_KEY");
  if (!out->key.empty()) {
    *source = "AZURE_STORAGE_KEY";
    return CheckKey(out->key, "AZURE_STORAGE_KEY");
  }
  out->sas_token = StripQuestionMark(GetEnv("AZURE_STORAGE_SAS_TOKEN"));
  if (!out->sas_token.empty()) {
    *source = "AZURE_STORAGE_SAS_TOKEN";
    return Status::OK();
  }
  out->entra.client_id = GetEnv("AZURE_CLIENT_ID");
  out->entra.federated_token_file = GetEnv("AZURE_FEDERATED_TOKEN_FILE");
  if (!out->entra.federated_token_file.empty()) {
    *source = "Entra workload identity (AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID, AZURE_TENANT_ID)";
    out->entra.flow = EntraConfig::Flow::kWorkloadIdentity;
    out->entra.tenant_id = GetEnv("AZURE_TENANT_ID");
    out->entra.authority_host = GetEnv("AZURE_AUTHORITY_HOST");
    if (out->entra.client_id.empty() || out->entra.tenant_id.empty())
      return Status::InvalidArgument("AZURE_FEDERATED_TOKEN_FILE is set but AZURE_CLIENT_ID or AZURE_TENANT_ID is "
                                     "not: workload identity needs all three");
    return Status::OK();
  }
  const std::string auth = GetEnv("AZURE_STORAGE_AUTH");
  if (auth == "managed-identity") {
    *source = "Entra managed identity (AZURE_STORAGE_AUTH=managed-identity, AZURE_CLIENT_ID)";
    out->entra.flow = EntraConfig::Flow::kManagedIdentity;
    out->entra.imds_endpoint = GetEnv("AZURE_IMDS_ENDPOINT");
    return Status::OK();
  }
  if (!auth.empty())
    return Status::InvalidArgument("AZURE_STORAGE_AUTH='" + auth + "' is not known: the only value is "
                                   "managed-identity");
  return Status::Unauthenticated("no Azure credentials for storage account '" + out->account +
                                 "': set AZURE_STORAGE_KEY (Shared Key), AZURE_STORAGE_SAS_TOKEN, "
                                 "AZURE_STORAGE_CONNECTION_STRING, AZURE_FEDERATED_TOKEN_FILE with AZURE_CLIENT_ID "
                                 "and AZURE_TENANT_ID (workload identity), or AZURE_STORAGE_AUTH=managed-identity");
}

}  // namespace replite::azure
