// Additional request checksums for S3 PUTs (x-amz-checksum-crc32c,
// x-amz-checksum-crc64nvme): the service recomputes them and refuses a
// damaged body, and keeps them with the object. Sent as plain headers on
// single-request PUTs, never with the aws-chunked trailer encoding (which
// R2, B2 and other S3-compatible services reject). Enabled per replica URL
// (checksum=crc32c|crc64nvme; default none: Content-MD5 and the signed
// SHA-256 are always sent).
//
// Thread-safety: a Crc is used by one thread at a time; the rest is
// stateless.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "replite/status.h"

namespace replite::s3 {

enum class ChecksumAlgorithm { kNone, kCrc32c, kCrc64Nvme };

// "none", "crc32c", "crc64nvme" ("" = none).
Status ParseChecksumAlgorithm(const std::string& name, ChecksumAlgorithm* out);

class Crc {
 public:
  explicit Crc(ChecksumAlgorithm algo) : algo_(algo) {}
  void Update(const void* p, size_t n);
  uint64_t value() const;
  // The header (lower case) and its value (base64 of the big-endian CRC);
  // both "" for kNone.
  std::string HeaderName() const;
  std::string HeaderValue() const;

 private:
  ChecksumAlgorithm algo_;
  uint64_t state_ = ~uint64_t{0};
};

}  // namespace replite::s3
