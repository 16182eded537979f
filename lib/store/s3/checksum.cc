#include "store/s3/checksum.h"

#include <openssl/evp.h>

#include <array>

namespace replite::s3 {
namespace {

// Reflected table-driven CRCs: CRC-32C (Castagnoli, 0x1EDC6F41) and
// CRC-64/NVME (0xAD93D23594C93659), both with all-ones init and final xor.
template <typename T, T kReflectedPoly>
const std::array<T, 256>& Table() {
  static const std::array<T, 256> table = [] {
    std::array<T, 256> t{};
    for (uint32_t i = 0; i < 256; i++) {
      T c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kReflectedPoly : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

constexpr uint32_t kCrc32cPoly = 0x82F63B78u;
constexpr uint64_t kCrc64NvmePoly = 0x9A6C9329AC4BC9B5ull;

}  // namespace

Status ParseChecksumAlgorithm(const std::string& name, ChecksumAlgorithm* out) {
  if (name.empty() || name == "none") *out = ChecksumAlgorithm::kNone;
  else if (name == "crc32c") *out = ChecksumAlgorithm::kCrc32c;
  else if (name == "crc64nvme") *out = ChecksumAlgorithm::kCrc64Nvme;
  else return Status::InvalidArgument("checksum must be crc32c, crc64nvme or none, not '" + name + "'");
  return Status::OK();
}

void Crc::Update(const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  if (algo_ == ChecksumAlgorithm::kCrc32c) {
    const auto& t = Table<uint32_t, kCrc32cPoly>();
    uint32_t c = static_cast<uint32_t>(state_);
    for (size_t i = 0; i < n; i++) c = t[(c ^ b[i]) & 0xFF] ^ (c >> 8);
    state_ = c;
  } else if (algo_ == ChecksumAlgorithm::kCrc64Nvme) {
    const auto& t = Table<uint64_t, kCrc64NvmePoly>();
    uint64_t c = state_;
    for (size_t i = 0; i < n; i++) c = t[(c ^ b[i]) & 0xFF] ^ (c >> 8);
    state_ = c;
  }
}

uint64_t Crc::value() const {
  if (algo_ == ChecksumAlgorithm::kCrc32c) return ~static_cast<uint32_t>(state_);
  if (algo_ == ChecksumAlgorithm::kCrc64Nvme) return ~state_;
  return 0;
}

std::string Crc::HeaderName() const {
  if (algo_ == ChecksumAlgorithm::kCrc32c) return "x-amz-checksum-crc32c";
  if (algo_ == ChecksumAlgorithm::kCrc64Nvme) return "x-amz-checksum-crc64nvme";
  return "";
}

std::string Crc::HeaderValue() const {
  if (algo_ == ChecksumAlgorithm::kNone) return "";
  const int n = algo_ == ChecksumAlgorithm::kCrc32c ? 4 : 8;
  unsigned char be[8];
  const uint64_t v = value();
  for (int i = 0; i < n; i++) be[i] = static_cast<unsigned char>(v >> (8 * (n - 1 - i)));
  unsigned char out[16] = {};
  const int len = EVP_EncodeBlock(out, be, n);
  return std::string(reinterpret_cast<char*>(out), len > 0 ? static_cast<size_t>(len) : 0);
}

}  // namespace replite::s3
