// Temporary credentials from AWS STS, through the shared HttpClient:
//
// - AssumeRole, signed (SigV4, service "sts") with the credentials of
//   another provider (a profile's source_profile or credential_source);
// - AssumeRoleWithWebIdentity (EKS IRSA and other OIDC federation),
//   unsigned, with the token read again from its file on every fetch (the
//   platform rotates it).
//
// The endpoint is AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else
// https://sts.REGION.amazonaws.com. Errors name the role and STS's error
// code, never a credential or the web identity token.
//
// Thread-safety: a source's Fetch() may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "replite/status.h"
#include "store/s3/credential_provider.h"

namespace replite {
class HttpClient;
}

namespace replite::s3 {

struct StsRole {
  std::string region;        // signing region and default endpoint's region
  std::string role_arn;
  std::string session_name;  // "" = replite-<unix time>
  std::string external_id;   // AssumeRole only; "" = none
  int duration_s = 0;        // 0 = STS's default (1 hour)
};

std::unique_ptr<CredentialSource> NewAssumeRoleSource(std::shared_ptr<HttpClient> http, Env* env, StsRole role,
                                                      std::shared_ptr<CredentialProvider> source);
std::unique_ptr<CredentialSource> NewWebIdentitySource(std::shared_ptr<HttpClient> http, Env* env, StsRole role,
                                                       std::string token_file);

// The STS endpoint for `region` (see above), without a trailing '/'.
std::string StsEndpoint(const std::string& region);

}  // namespace replite::s3
