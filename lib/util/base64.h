// Base64 (RFC 4648, standard alphabet, padded), through OpenSSL's EVP
// block codec: Content-MD5 values, Azure block ids and Shared Keys.
//
// Thread-safety: stateless functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace replite {

std::string Base64Encode(std::string_view raw);
// False when `b64` is not padded standard base64 (whitespace is refused).
bool Base64Decode(std::string_view b64, std::string* raw);

}  // namespace replite
