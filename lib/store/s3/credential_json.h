// The credential document that IMDS, the ECS container endpoint and a
// credential_process print: a JSON object with AccessKeyId,
// SecretAccessKey, a session token (Token or SessionToken) and an optional
// ISO 8601 Expiration. Errors name `what` (the source) and never quote the
// document.
//
// Thread-safety: stateless, safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "replite/status.h"
#include "store/s3/credential_provider.h"

namespace replite::s3 {

Status ParseCredentialJson(std::string_view doc, const std::string& what, TimedCredentials* out);

// "2026-12-02T21:00:00Z", with optional fraction and a Z or ±HH:MM offset →
// ms since the epoch; 0 if unparsable.
int64_t ParseExpirationMs(std::string_view s);

}  // namespace replite::s3
