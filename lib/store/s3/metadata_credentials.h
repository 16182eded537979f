// Credentials from the endpoints a compute platform runs next to the
// process, both through the shared HttpClient:
//
// - ECS / EKS Pod Identity container credentials:
//   AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on http://169.254.170.2) or
//   AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or http to a loopback address
//   or the ECS/EKS link-local agents), with an Authorization header from
//   AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read again on every fetch: the
//   agent rotates it) or AWS_CONTAINER_AUTHORIZATION_TOKEN.
// - EC2 instance metadata, IMDSv2 only: a session token (PUT
//   /latest/api/token), then the instance role's name and credentials.
//   AWS_EC2_METADATA_SERVICE_ENDPOINT overrides http://169.254.169.254
//   (AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6: http://[fd00:ec2::254]).
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

// True when the environment names a container credentials endpoint.
bool ContainerCredentialsConfigured();
// The ECS source, from the environment; fails when the URI is not allowed.
Status NewContainerCredentialSource(std::shared_ptr<HttpClient> http, std::unique_ptr<CredentialSource>* out);

// False when AWS_EC2_METADATA_DISABLED=true.
bool InstanceMetadataEnabled();
std::unique_ptr<CredentialSource> NewInstanceMetadataSource(std::shared_ptr<HttpClient> http);

}  // namespace replite::s3
