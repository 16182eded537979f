// credential_process: a profile's command (run with /bin/sh -c) prints a
// JSON document {"Version": 1, "AccessKeyId", "SecretAccessKey",
// "SessionToken", "Expiration"} on stdout. It runs again before the
// Expiration passes (no Expiration: the credentials never expire). The
// command may take at most 60 s; its stderr goes to ours; errors quote its
// exit status, never its output.
//
// Thread-safety: Fetch() may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "store/s3/credential_provider.h"

namespace replite::s3 {

// `where` names the profile for messages ("profile 'x' in ~/.aws/config").
std::unique_ptr<CredentialSource> NewProcessCredentialSource(std::string command, std::string where);

}  // namespace replite::s3
