#include "store/s3/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>

namespace replite::s3 {
namespace {

constexpr const char* kAlgorithm = "AWS4-HMAC-SHA256";

// Fetched once: in OpenSSL 3, passing EVP_sha256() makes every digest and
// HMAC call look the algorithm up in the provider tables (an implicit fetch
// under a lock); a signature takes six of them.
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = [] {
    const EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return m ? m : EVP_sha256();
  }();  // never freed: used until process exit
  return md;
}

std::string Lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return r;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Trims and collapses inner whitespace runs to one space, as SigV4 requires
// ("a   b" and "a b" must sign the same because proxies may fold them).
std::string NormalizeValue(std::string_view v) {
  std::string r;
  r.reserve(v.size());
  bool pending_space = false;
  for (char c : v) {
    if (IsSpace(c)) {
      pending_space = !r.empty();
      continue;
    }
    if (pending_space) r.push_back(' ');
    pending_space = false;
    r.push_back(c);
  }
  return r;
}

std::string CanonicalUri(const std::string& path) {
  if (path.empty()) return "/";
  return UriEncode(path, /*keep_slash=*/true);
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest is the one-shot form; it cannot fail for SHA-256 short of
  // an allocation failure, in which case the digest is zeros and the
  // request fails its signature check (never silently succeeds).
  if (EVP_Digest(data.data(), data.size(), md, &len, Sha256Md(), nullptr) != 1) {
    len = 32;
    std::fill(md, md + 32, 0);
  }
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), len));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(Sha256Md(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len)) {
    len = 32;
    std::fill(md, md + 32, 0);
  }
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string HexEncode(std::string_view raw) {
  static const char* kHex = "0123456789abcdef";
  std::string r;
  r.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    r.push_back(kHex[c >> 4]);
    r.push_back(kHex[c & 15]);
  }
  return r;
}

std::string UriEncode(std::string_view s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string r;
  r.reserve(s.size() + s.size() / 4);
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
      r.push_back(static_cast<char>(c));
    } else {
      r.push_back('%');
      r.push_back(kHex[c >> 4]);
      r.push_back(kHex[c & 15]);
    }
  }
  return r;
}

std::string AmzDate(int64_t unix_micros) {
  time_t t = static_cast<time_t>(unix_micros / 1000000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

void CanonicalHeaders(const KeyValues& headers, std::string* canonical, std::string* signed_names) {
  // Stable sort by lower-cased name keeps repeated headers in the order
  // they were given, which is the order their values are joined in.
  std::vector<std::pair<std::string, std::string>> h;
  h.reserve(headers.size());
  for (const auto& [k, v] : headers) h.emplace_back(Lower(NormalizeValue(k)), NormalizeValue(v));
  std::stable_sort(h.begin(), h.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  canonical->clear();
  signed_names->clear();
  for (size_t i = 0; i < h.size(); i++) {
    if (i > 0 && h[i].first == h[i - 1].first) {
      canonical->back() = ',';  // replace the previous line's '\n'
      *canonical += h[i].second + "\n";
      continue;
    }
    *canonical += h[i].first + ":" + h[i].second + "\n";
    if (!signed_names->empty()) signed_names->push_back(';');
    *signed_names += h[i].first;
  }
}

std::string CanonicalQuery(const KeyValues& query) {
  std::vector<std::pair<std::string, std::string>> q;
  q.reserve(query.size());
  for (const auto& [k, v] : query) q.emplace_back(UriEncode(k, false), UriEncode(v, false));
  std::sort(q.begin(), q.end());
  std::string r;
  for (const auto& [k, v] : q) {
    if (!r.empty()) r.push_back('&');
    r += k + "=" + v;
  }
  return r;
}

SigV4Signer::SigV4Signer(std::string region, std::string service)
    : region_(std::move(region)), service_(std::move(service)) {}

std::string SigV4Signer::SigningKey(const AwsCredentials& creds, const std::string& date) {
  std::string secret_id = Sha256Hex(creds.secret_access_key);
  std::lock_guard<std::mutex> l(mu_);
  if (date == cached_date_ && secret_id == cached_secret_hash_) return cached_key_;
  std::string k = HmacSha256("AWS4" + creds.secret_access_key, date);
  k = HmacSha256(k, region_);
  k = HmacSha256(k, service_);
  k = HmacSha256(k, "aws4_request");
  cached_date_ = date;
  cached_secret_hash_ = secret_id;
  cached_key_ = k;
  return k;
}

void SigV4Signer::SignHeaders(const AwsCredentials& creds, int64_t unix_micros, const SigningRequest& req,
                              const SignOptions& opt, SignedRequest* out) {
  *out = SignedRequest();
  const std::string amz_date = AmzDate(unix_micros);
  const std::string date = amz_date.substr(0, 8);
  const std::string scope = date + "/" + region_ + "/" + service_ + "/aws4_request";

  KeyValues headers = req.headers;
  out->add_headers.emplace_back("x-amz-date", amz_date);
  if (opt.sign_content_sha256) out->add_headers.emplace_back("x-amz-content-sha256", req.payload_hash);
  if (!creds.session_token.empty() && opt.sign_session_token)
    out->add_headers.emplace_back("x-amz-security-token", creds.session_token);
  for (const auto& h : out->add_headers) headers.push_back(h);

  std::string canon_headers, signed_names;
  CanonicalHeaders(headers, &canon_headers, &signed_names);
  out->canonical_request = req.method + "\n" + CanonicalUri(req.path) + "\n" + CanonicalQuery(req.query) + "\n" +
                           canon_headers + "\n" + signed_names + "\n" + req.payload_hash;
  out->string_to_sign =
      std::string(kAlgorithm) + "\n" + amz_date + "\n" + scope + "\n" + Sha256Hex(out->canonical_request);
  out->signature = HexEncode(HmacSha256(SigningKey(creds, date), out->string_to_sign));
  if (!creds.session_token.empty() && !opt.sign_session_token)
    out->add_headers.emplace_back("x-amz-security-token", creds.session_token);
  out->add_headers.emplace_back("authorization", std::string(kAlgorithm) + " Credential=" + creds.access_key_id +
                                                     "/" + scope + ", SignedHeaders=" + signed_names +
                                                     ", Signature=" + out->signature);
}

void SigV4Signer::Presign(const AwsCredentials& creds, int64_t unix_micros, const SigningRequest& req,
                          const SignOptions& opt, SignedRequest* out) {
  *out = SignedRequest();
  const std::string amz_date = AmzDate(unix_micros);
  const std::string date = amz_date.substr(0, 8);
  const std::string scope = date + "/" + region_ + "/" + service_ + "/aws4_request";

  std::string canon_headers, signed_names;
  CanonicalHeaders(req.headers, &canon_headers, &signed_names);
  KeyValues query = req.query;
  query.emplace_back("X-Amz-Algorithm", kAlgorithm);
  query.emplace_back("X-Amz-Credential", creds.access_key_id + "/" + scope);
  query.emplace_back("X-Amz-Date", amz_date);
  query.emplace_back("X-Amz-Expires", std::to_string(opt.presign_expires_s));
  query.emplace_back("X-Amz-SignedHeaders", signed_names);
  if (!creds.session_token.empty() && opt.sign_session_token)
    query.emplace_back("X-Amz-Security-Token", creds.session_token);
  const std::string canon_query = CanonicalQuery(query);

  out->canonical_request = req.method + "\n" + CanonicalUri(req.path) + "\n" + canon_query + "\n" + canon_headers +
                           "\n" + signed_names + "\n" + req.payload_hash;
  out->string_to_sign =
      std::string(kAlgorithm) + "\n" + amz_date + "\n" + scope + "\n" + Sha256Hex(out->canonical_request);
  out->signature = HexEncode(HmacSha256(SigningKey(creds, date), out->string_to_sign));
  out->query_string = canon_query + "&X-Amz-Signature=" + out->signature;
  if (!creds.session_token.empty() && !opt.sign_session_token)
    out->query_string += "&X-Amz-Security-Token=" + UriEncode(creds.session_token, false);
}

}  // namespace replite::s3
