#include "store/gcs/service_account_jwt.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <memory>

#include "util/base64.h"

namespace replite::gcs {
namespace {

// A JSON string literal.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

std::string Base64Url(std::string_view raw) {
  std::string s = Base64Encode(raw);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

Status SignServiceAccountJwt(const JwtClaims& claims, const std::string& private_key_pem, std::string* jwt) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(private_key_pem.data(),
                                                                static_cast<int>(private_key_pem.size())),
                                                BIO_free);
  if (!bio) return Status::ResourceExhausted("OpenSSL cannot allocate a BIO");
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!key || EVP_PKEY_base_id(key.get()) != EVP_PKEY_RSA)
    return Status::InvalidArgument("the service account's private_key is not a PEM RSA private key");
  const std::string header = Base64Url(R"({"alg":"RS256","typ":"JWT"})");
  const std::string body =
      Base64Url("{\"iss\":" + Quote(claims.issuer) + ",\"scope\":" + Quote(claims.scope) + ",\"aud\":" +
                Quote(claims.audience) + ",\"iat\":" + std::to_string(claims.issued_at_s) +
                ",\"exp\":" + std::to_string(claims.issued_at_s + claims.lifetime_s) + "}");
  const std::string input = header + "." + body;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1)
    return Status::Internal("OpenSSL cannot sign the service account JWT (RS256)");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
    return Status::Internal("OpenSSL cannot sign the service account JWT (RS256)");
  sig.resize(len);
  *jwt = input + "." + Base64Url(sig);
  return Status::OK();
}

}  // namespace replite::gcs
