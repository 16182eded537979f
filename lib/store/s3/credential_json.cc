#include "store/s3/credential_json.h"

#include <cstdlib>
#include <map>

#include "store/s3/flat_json.h"
#include "store/s3/s3_xml.h"

namespace replite::s3 {

int64_t ParseExpirationMs(std::string_view s) {
  int64_t ms = ParseIso8601Ms(s);
  if (ms == 0 || s.size() < 19) return 0;
  // After "YYYY-MM-DDTHH:MM:SS[.fff]": Z, nothing, or an offset.
  size_t i = 19;
  while (i < s.size() && (s[i] == '.' || (s[i] >= '0' && s[i] <= '9'))) i++;
  if (i < s.size() && (s[i] == '+' || s[i] == '-') && i + 6 <= s.size() && s[i + 3] == ':') {
    const int h = std::atoi(std::string(s.substr(i + 1, 2)).c_str());
    const int m = std::atoi(std::string(s.substr(i + 4, 2)).c_str());
    const int64_t off = (h * 60 + m) * 60000LL;
    ms += s[i] == '+' ? -off : off;
  }
  return ms;
}

Status ParseCredentialJson(std::string_view doc, const std::string& what, TimedCredentials* out) {
  std::map<std::string, std::string> m;
  Status s = ParseFlatJson(doc, &m);
  if (!s.ok()) return Status::Unauthenticated(what + " answered something that is not a credential document (" +
                                              s.message() + ")");
  if (auto code = m.find("Code"); code != m.end() && code->second != "Success")
    return Status::Unauthenticated(what + " answered Code '" + code->second + "' instead of credentials");
  *out = TimedCredentials();
  out->creds.access_key_id = m["AccessKeyId"];
  out->creds.secret_access_key = m["SecretAccessKey"];
  out->creds.session_token = m.count("Token") ? m["Token"] : m["SessionToken"];
  if (out->creds.access_key_id.empty() || out->creds.secret_access_key.empty())
    return Status::Unauthenticated(what + " answered without AccessKeyId or SecretAccessKey");
  const std::string exp = m["Expiration"];
  if (!exp.empty()) {
    out->expires_ms = ParseExpirationMs(exp);
    if (out->expires_ms == 0)
      return Status::Unauthenticated(what + " answered an Expiration that is not an ISO 8601 time: '" + exp + "'");
  }
  return Status::OK();
}

}  // namespace replite::s3
