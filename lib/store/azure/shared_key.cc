#include "store/azure/shared_key.h"

#include <algorithm>
#include <map>

#include "util/base64.h"

namespace replite::azure {

std::string SharedKeyStringToSign(const std::string& method, const s3::KeyValues& headers, uint64_t content_length,
                                  const std::string& account, const std::string& encoded_path,
                                  const s3::KeyValues& query) {
  auto header = [&](const char* name) {
    for (const auto& [k, v] : headers)
      if (k == name) return v;
    return std::string();
  };
  std::string s = method + "\n";
  s += header("content-encoding") + "\n";
  s += header("content-language") + "\n";
  s += (content_length ? std::to_string(content_length) : std::string()) + "\n";  // 0 signs as empty
  s += header("content-md5") + "\n";
  s += header("content-type") + "\n";
  s += header("date") + "\n";
  s += header("if-modified-since") + "\n";
  s += header("if-match") + "\n";
  s += header("if-none-match") + "\n";
  s += header("if-unmodified-since") + "\n";
  s += header("range") + "\n";
  // Canonicalized headers: every x-ms-* header, sorted by name.
  std::map<std::string, std::string> ms;
  for (const auto& [k, v] : headers)
    if (k.compare(0, 5, "x-ms-") == 0) ms[k] = v;
  for (const auto& [k, v] : ms) s += k + ":" + v + "\n";
  // Canonicalized resource: /ACCOUNT/PATH, then each query parameter on its
  // own line (names lower case, sorted; several values joined by ',').
  s += "/" + account + (encoded_path.empty() ? "/" : encoded_path);
  std::map<std::string, std::vector<std::string>> q;
  for (const auto& [k, v] : query) {
    std::string lk = k;
    std::transform(lk.begin(), lk.end(), lk.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    q[lk].push_back(v);
  }
  for (auto& [k, vs] : q) {
    std::sort(vs.begin(), vs.end());
    s += "\n" + k + ":";
    for (size_t i = 0; i < vs.size(); i++) s += (i ? "," : "") + vs[i];
  }
  return s;
}

std::string SharedKeyAuthorization(const std::string& account, const std::string& raw_key,
                                   const std::string& string_to_sign) {
  return "SharedKey " + account + ":" + Base64Encode(s3::HmacSha256(raw_key, string_to_sign));
}

}  // namespace replite::azure
