// Azure Storage Shared Key authorization (Blob service, version 2009-09-19
// and later): the string to sign built from the request, and the
// Authorization header "SharedKey ACCOUNT:BASE64(HMAC-SHA256(key, string))".
// The time is an x-ms-date header the caller sets from Env::NowMicros().
//
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>

#include "store/s3/sigv4.h"  // KeyValues

namespace replite::azure {

// headers: every header that will be sent, names in lower case (x-ms-date
// among them). encoded_path: the URL path exactly as sent (for the
// emulator's path-style URLs it starts with "/ACCOUNT"). query: decoded
// names and values. content_length: the body's size (0 signs as empty).
std::string SharedKeyStringToSign(const std::string& method, const s3::KeyValues& headers, uint64_t content_length,
                                  const std::string& account, const std::string& encoded_path,
                                  const s3::KeyValues& query);

// The Authorization header value. raw_key: the decoded account key.
std::string SharedKeyAuthorization(const std::string& account, const std::string& raw_key,
                                   const std::string& string_to_sign);

}  // namespace replite::azure
