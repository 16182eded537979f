#include "util/redact.h"

#include <cctype>

namespace replite {
namespace {

constexpr const char* kRedacted = "REDACTED";

// "u:p@host..." -> "REDACTED@host...": the userinfo ends at the last '@'
// before the authority ends ('/', '?' or '#').
std::string RedactAuthority(const std::string& s, size_t start) {
  const size_t end = s.find_first_of("/?#", start);
  const size_t at = s.rfind('@', end == std::string::npos ? std::string::npos : end - 1);
  if (at == std::string::npos || at < start || (end != std::string::npos && at >= end)) return s;
  return s.substr(0, start) + kRedacted + s.substr(at);
}

std::string Lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Decodes %XX so that "%73ecret" is seen as "secret".
std::string Decode(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); i++) {
    if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out.push_back(char(std::stoi(in.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

bool SecretName(const std::string& raw) {
  const std::string k = Lower(Decode(raw));
  for (const char* w : {"secret", "key", "token", "pass", "pwd", "sig", "credential", "auth", "sas"})
    if (k.find(w) != std::string::npos) return true;
  return false;
}

// A query value: secret by name, or a URL whose userinfo goes.
std::string RedactValue(const std::string& key, const std::string& value) {
  if (SecretName(key)) return value.empty() ? value : kRedacted;
  const std::string decoded = Decode(value);
  const size_t sep = decoded.find("://");
  if (sep == std::string::npos) return value;
  const std::string r = RedactAuthority(decoded, sep + 3);
  return r == decoded ? value : r;
}

}  // namespace

std::string RedactUrl(const std::string& url) {
  const size_t sep = url.find("://");
  if (sep == std::string::npos) return url;
  const size_t q = url.find('?', sep + 3);
  std::string out = RedactAuthority(url.substr(0, q), sep + 3);
  if (q == std::string::npos) return out;
  out += '?';
  const std::string query = url.substr(q + 1);
  size_t pos = 0;
  while (pos <= query.size()) {
    const size_t amp = query.find('&', pos);
    const std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) out += SecretName(kv) ? std::string(kRedacted) : kv;
    else out += kv.substr(0, eq + 1) + RedactValue(kv.substr(0, eq), kv.substr(eq + 1));
    if (amp == std::string::npos) break;
    out += '&';
    pos = amp + 1;
  }
  return out;
}

}  // namespace replite
