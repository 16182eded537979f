// Microsoft Entra ID access tokens for Azure Storage (scope
// https://storage.azure.com/.default), fetched through the shared
// HttpClient and kept by an AccessTokenCache (store/access_token_cache.h,
// shared with Google's tokens): refreshed before they expire (when less
// than min(5 min, half the token's lifetime) is left), so requests never
// carry an expired token.
//
// Two flows:
//   - workload identity (Kubernetes): the federated token in
//     AZURE_FEDERATED_TOKEN_FILE (read again on every refresh: it rotates)
//     is exchanged at AZURE_AUTHORITY_HOST/AZURE_TENANT_ID/oauth2/v2.0/token
//     for AZURE_CLIENT_ID (client-credentials grant with a JWT assertion);
//   - managed identity: the instance metadata service (IMDS,
//     http://169.254.169.254 unless AZURE_IMDS_ENDPOINT says otherwise),
//     with AZURE_CLIENT_ID for a user-assigned identity.
// Neither a token nor an assertion ever appears in an error.
//
// Thread-safety: Token() may be called from any thread; one refresh runs
// at a time and the others wait for it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "replite/status.h"
#include "replite/sys/env.h"
#include "store/access_token_cache.h"

namespace replite {
class HttpClient;
}

namespace replite::azure {

struct EntraConfig {
  enum class Flow { kNone, kWorkloadIdentity, kManagedIdentity };
  Flow flow = Flow::kNone;
  std::string client_id;             // AZURE_CLIENT_ID ("" = the system-assigned identity, IMDS only)
  std::string tenant_id;             // AZURE_TENANT_ID (workload identity)
  std::string authority_host;        // AZURE_AUTHORITY_HOST; Default: https://login.microsoftonline.com
  std::string federated_token_file;  // AZURE_FEDERATED_TOKEN_FILE (workload identity)
  std::string imds_endpoint;         // AZURE_IMDS_ENDPOINT; Default: http://169.254.169.254
  std::string ca_file;               // for an https token endpoint with a private CA ("" = default)

  // "workload identity (AZURE_FEDERATED_TOKEN_FILE, ...)" for messages.
  std::string Describe() const;
};

class EntraTokenSource {
 public:
  EntraTokenSource(EntraConfig config, std::shared_ptr<HttpClient> http, Env* env);

  // A valid access token (cached, refreshed ahead of expiry).
  Status Token(std::string* token) { return cache_.Get(token); }

  // Token requests made so far (tests).
  uint64_t fetches() const { return cache_.fetches(); }

 private:
  Status Fetch(std::string* token, int64_t* expires_in_s);

  const EntraConfig config_;
  std::shared_ptr<HttpClient> http_;
  AccessTokenCache cache_;
};

}  // namespace replite::azure
