// Where S3 credentials come from: the AWS default credential chain, in the
// order the AWS SDKs use (as the Rust and Java v2 SDKs document it); the
// first source that is configured wins:
//   0. an explicit profile (the replica URL's `profile=` parameter): that
//      profile only, nothing else is tried;
//   1. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
//   2. the profile named by AWS_PROFILE (which must exist), else "default"
//      if it exists, from the shared config file (AWS_CONFIG_FILE, else
//      ~/.aws/config, sections [profile NAME] / [default]) merged with the
//      shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
//      ~/.aws/credentials, sections [NAME]; its keys win). In a profile:
//      role_arn with source_profile or credential_source (Environment,
//      Ec2InstanceMetadata, EcsContainer) → STS AssumeRole (external_id,
//      role_session_name, duration_seconds honoured); role_arn with
//      web_identity_token_file → STS AssumeRoleWithWebIdentity; else
//      aws_access_key_id / aws_secret_access_key (+ aws_session_token);
//      else credential_process;
//   3. AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME)
//      → STS AssumeRoleWithWebIdentity (EKS IRSA);
//   4. ECS / EKS Pod Identity container credentials
//      (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI);
//   5. EC2 instance metadata (IMDSv2), unless AWS_EC2_METADATA_DISABLED=true.
// Choosing the source reads only the environment and the files; nothing
// is fetched over the network until the first request (see
// credential_provider.h for refresh). Error messages name the source and
// the fix, never a secret value.
//
// Thread-safety: reads the environment and files only; safe from any
// thread as long as nobody calls setenv concurrently.
#pragma once

#include <memory>
#include <string>

#include "replite/status.h"
#include "replite/sys/env.h"
#include "store/s3/credential_provider.h"
#include "store/s3/sigv4.h"

namespace replite {
class HttpClient;
}

namespace replite::s3 {

struct ChainOptions {
  std::shared_ptr<HttpClient> http;  // for STS, ECS and IMDS
  Env* env = nullptr;                // Default: Env::Default()
  std::string region;                // STS region; Default: "" = AWS_REGION, the profile's, us-east-1
};

// Picks the source for `profile` (the URL parameter, "" when absent).
Status ResolveCredentialSource(const std::string& profile, const ChainOptions& options,
                               std::unique_ptr<CredentialSource>* out);

// Reads one profile of an INI credentials file ([name] or [profile name]
// sections; aws_access_key_id, aws_secret_access_key, aws_session_token).
Status LoadProfile(const std::string& path, const std::string& profile, AwsCredentials* out);

}  // namespace replite::s3
