// Where S3 credentials come from, in order:
//   1. an explicit profile (the replica URL's `profile=` parameter) from the
//      shared credentials file;
//   2. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
//   3. the profile named by AWS_PROFILE (else "default") from the shared
//      credentials file: AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials.
// Error messages name the source and the fix, never a secret value.
//
// Thread-safety: reads the environment and files only; safe from any
// thread as long as nobody calls setenv concurrently.
#pragma once

#include <string>

#include "replite/status.h"
#include "store/s3/sigv4.h"

namespace replite::s3 {

// `profile` is the URL parameter ("" when absent). *source receives a
// description for logs, e.g. "environment" or "profile 'prod' in
// /root/.aws/credentials".
Status LoadCredentials(const std::string& profile, AwsCredentials* out, std::string* source);

// Reads one profile of an INI credentials file ([name] or [profile name]
// sections; aws_access_key_id, aws_secret_access_key, aws_session_token).
Status LoadProfile(const std::string& path, const std::string& profile, AwsCredentials* out);

}  // namespace replite::s3
