#include "util/base64.h"

#include <openssl/evp.h>

#include <cctype>

namespace replite {

std::string Base64Encode(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(len > 0 ? static_cast<size_t>(len) : 0);
  return out;
}

bool Base64Decode(std::string_view b64, std::string* raw) {
  raw->clear();
  if (b64.size() % 4 != 0) return false;
  if (b64.empty()) return true;
  for (size_t i = 0; i < b64.size(); i++) {
    const char c = b64[i];
    const bool pad_ok = c == '=' && i + 2 >= b64.size() && (i + 1 == b64.size() || b64[i + 1] == '=');
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || pad_ok)) return false;
  }
  raw->assign(3 * b64.size() / 4, '\0');
  int len = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw->data()),
                            reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (len < 0) return false;
  // EVP_DecodeBlock counts the padding as zero bytes: drop them.
  size_t pad = b64.back() == '=' ? (b64[b64.size() - 2] == '=' ? 2 : 1) : 0;
  raw->resize(static_cast<size_t>(len) - pad);
  return true;
}

}  // namespace replite
