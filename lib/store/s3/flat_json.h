// The JSON that AWS credential endpoints speak (IMDS, ECS, a
// credential_process): one flat object whose values are strings, numbers,
// booleans or null. Nested values are skipped. Malformed input is
// kCorruption naming what was wrong; the message never quotes the input
// (it holds secrets).
//
// Thread-safety: stateless, safe from any thread.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "replite/status.h"

namespace replite::s3 {

// Top-level members as text: strings unescaped, numbers/booleans as
// written, null as "".
Status ParseFlatJson(std::string_view doc, std::map<std::string, std::string>* out);

}  // namespace replite::s3
