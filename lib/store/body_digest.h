// BodyDigest: SHA-256 (hex, S3's x-amz-content-sha256) and MD5 (base64, the
// Content-MD5 every S3-compatible service and Azure verify) of a request
// body, computed in one pass; DigestFileRange digests a byte range of a file
// in 256 KiB pieces, so a part or a snapshot is never held whole in memory.
//
// Thread-safety: a BodyDigest is used by one thread; the function is
// stateless.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "replite/status.h"
#include "store/s3/checksum.h"

struct evp_md_ctx_st;

namespace replite {

class BodyDigest {
 public:
  explicit BodyDigest(s3::ChecksumAlgorithm crc = s3::ChecksumAlgorithm::kNone);
  ~BodyDigest();
  BodyDigest(const BodyDigest&) = delete;
  BodyDigest& operator=(const BodyDigest&) = delete;
  void Update(const void* p, size_t n);
  void Finish(std::string* sha_hex, std::string* md5_b64);
  // The optional x-amz-checksum-* CRC (store/s3/checksum.h) of the same bytes.
  const s3::Crc& crc() const { return crc_; }

 private:
  evp_md_ctx_st* sha_;
  evp_md_ctx_st* md5_;
  s3::Crc crc_;
};

// The base64 MD5 of a body held in memory (a Content-MD5 value).
std::string ContentMd5(const std::string& body);

// Digests [off, off+len) of the file at `path`; with a CRC algorithm also
// its x-amz-checksum-* value (store/s3/checksum.h) in *crc_b64.
Status DigestFileRange(const std::string& path, uint64_t off, uint64_t len, std::string* sha_hex,
                       std::string* md5_b64, s3::ChecksumAlgorithm crc_algo = s3::ChecksumAlgorithm::kNone,
                       std::string* crc_b64 = nullptr);

}  // namespace replite
