// FakeTokenServer: a small local stand-in for Microsoft Entra ID's token
// endpoint (workload identity: POST /TENANT/oauth2/v2.0/token with a
// client assertion) and for the instance metadata service (managed
// identity: GET /metadata/identity/oauth2/token with "Metadata: true"),
// run with python3 on 127.0.0.1. It checks each request the way the real
// ones do (grant type, client id, the assertion read from the federated
// token file, scope or resource, the Metadata header) and answers with a
// JWT that azurite's --oauth basic accepts (issuer sts.windows.net,
// audience https://storage.azure.com, valid for an hour) but with the
// expires_in it was told, so tests can force refreshes.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

namespace replite::testing {

class FakeTokenServer {
 public:
  // client_id / tenant: what requests must name; assertion_file: the
  // federated token file whose content the assertion must equal;
  // expires_in: seconds announced with each token.
  static std::unique_ptr<FakeTokenServer> Start(const std::string& client_id, const std::string& tenant,
                                                const std::string& assertion_file, int expires_in,
                                                std::string* why);
  ~FakeTokenServer();

  const std::string& endpoint() const { return endpoint_; }  // "http://127.0.0.1:PORT"
  // Tokens issued so far (GET /count); -1 if the server does not answer.
  int TokensIssued() const;

 private:
  FakeTokenServer() = default;
  pid_t pid_ = -1;
  std::string endpoint_;
  std::string script_path_;
  std::string log_path_;
};

}  // namespace replite::testing
