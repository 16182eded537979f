#include "store/body_digest.h"

#include <fcntl.h>
#include <openssl/evp.h>

#include <algorithm>

#include "store/s3/sigv4.h"
#include "util/base64.h"
#include "util/file_util.h"

namespace replite {

BodyDigest::BodyDigest(s3::ChecksumAlgorithm crc) : sha_(EVP_MD_CTX_new()), md5_(EVP_MD_CTX_new()), crc_(crc) {
  EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr);
  EVP_DigestInit_ex(md5_, EVP_md5(), nullptr);
}

BodyDigest::~BodyDigest() {
  EVP_MD_CTX_free(sha_);
  EVP_MD_CTX_free(md5_);
}

void BodyDigest::Update(const void* p, size_t n) {
  EVP_DigestUpdate(sha_, p, n);
  EVP_DigestUpdate(md5_, p, n);
  crc_.Update(p, n);
}

void BodyDigest::Finish(std::string* sha_hex, std::string* md5_b64) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(sha_, md, &len);
  *sha_hex = s3::HexEncode(std::string_view(reinterpret_cast<char*>(md), len));
  EVP_DigestFinal_ex(md5_, md, &len);
  *md5_b64 = Base64Encode(std::string_view(reinterpret_cast<char*>(md), len));
}

std::string ContentMd5(const std::string& body) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(body.data(), body.size(), md, &len, EVP_md5(), nullptr);
  return Base64Encode(std::string_view(reinterpret_cast<char*>(md), len));
}

Status DigestFileRange(const std::string& path, uint64_t off, uint64_t len, std::string* sha_hex,
                       std::string* md5_b64, s3::ChecksumAlgorithm crc_algo, std::string* crc_b64) {
  ScopedFd fd;
  Status s = OpenFile(path, O_RDONLY | O_CLOEXEC, 0, &fd);
  if (!s.ok()) return s;
  BodyDigest d(crc_algo);
  std::string buf(256 << 10, '\0');
  uint64_t done = 0;
  while (done < len) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), len - done));
    size_t got = 0;
    if (!(s = PRead(fd.get(), buf.data(), want, off + done, &got, path)).ok()) return s;
    if (got == 0) return Status::IOError("read " + path + ": file shrank while being uploaded");
    d.Update(buf.data(), got);
    done += got;
  }
  d.Finish(sha_hex, md5_b64);
  if (crc_b64) *crc_b64 = d.crc().HeaderValue();
  return Status::OK();
}

}  // namespace replite
