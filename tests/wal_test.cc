// [wal] WAL header/frame parsing and the checksum chain, on WAL files that
// SQLite itself wrote.
#include <catch2/catch.hpp>
#include <cstring>

#include "test_util.h"
#include "util/coding.h"
#include "util/file_util.h"
#include "util/hash.h"
#include "wal/wal_format.h"

using namespace replite;

namespace {

// Writes a few transactions with SQLite and returns the raw WAL bytes.
std::string MakeWal(test::TempDir& dir, int page_size, int txs) {
  const std::string db = dir / ("w" + std::to_string(page_size) + ".db");
  test::Writer w(db, 0, page_size);
  w.Exec("CREATE TABLE t(x)");
  for (int i = 0; i < txs; i++) w.Exec("INSERT INTO t VALUES (randomblob(" + std::to_string(100 + i * 10) + "))");
  std::string wal;
  REQUIRE(ReadFileToString(db + "-wal", &wal).ok());
  return wal;
}

struct Scan {
  size_t frames = 0, commits = 0;
};

Scan ScanAll(const std::string& wal) {
  WalHeader h;
  REQUIRE(ParseWalHeader(reinterpret_cast<const unsigned char*>(wal.data()), wal.size(), &h).ok());
  uint32_t s1 = h.cksum1, s2 = h.cksum2;
  Scan out;
  const size_t fsz = kWalFrameHeaderSize + h.page_size;
  for (size_t off = kWalHeaderSize; off + fsz <= wal.size(); off += fsz) {
    const unsigned char* f = reinterpret_cast<const unsigned char*>(wal.data()) + off;
    if (!VerifyWalFrame(h, f, &s1, &s2)) break;
    out.frames++;
    if (ParseWalFrameHeader(f).commit_size) out.commits++;
  }
  return out;
}

}  // namespace

TEST_CASE("xxh64 matches the reference values", "[wal][hash]") {
  CHECK(XXH64("", 0, 0) == 0xEF46DB3751D8E999ULL);
  CHECK(XXH64("a", 1, 0) == 0xD24EC4F1A98C6E5BULL);
  CHECK(XXH64("abc", 3, 0) == 0x44BC2CF5AD770999ULL);
  std::string big(1000, 'x');
  XXH64Stream s(7);
  for (size_t i = 0; i < big.size(); i += 13) s.Update(big.data() + i, std::min<size_t>(13, big.size() - i));
  CHECK(s.Digest() == XXH64(big.data(), big.size(), 7));
}

TEST_CASE("WAL written by SQLite parses and verifies", "[wal]") {
  test::TempDir dir;
  for (int ps : {512, 4096, 65536}) {
    std::string wal = MakeWal(dir, ps, 5);
    WalHeader h;
    REQUIRE(ParseWalHeader(reinterpret_cast<const unsigned char*>(wal.data()), wal.size(), &h).ok());
    CHECK(h.page_size == uint32_t(ps));
    Scan s = ScanAll(wal);
    CHECK(s.commits == 6);  // CREATE + 5 inserts
    CHECK(s.frames >= 6);
  }
}

TEST_CASE("big-endian checksums verify like little-endian ones", "[wal]") {
  test::TempDir dir;
  std::string wal = MakeWal(dir, 4096, 4);
  Scan le = ScanAll(wal);
  Scan be = ScanAll(test::RechainWal(wal, true));
  CHECK(be.frames == le.frames);
  CHECK(be.commits == le.commits);
  // And a little-endian reader must not accept big-endian sums.
  std::string mixed = test::RechainWal(wal, true);
  PutBE32(mixed.data(), kWalMagicLE);
  WalHeader h;
  CHECK_FALSE(ParseWalHeader(reinterpret_cast<const unsigned char*>(mixed.data()), mixed.size(), &h).ok());
}

TEST_CASE("a flipped byte breaks the chain at that frame", "[wal]") {
  test::TempDir dir;
  std::string wal = MakeWal(dir, 4096, 6);
  Scan all = ScanAll(wal);
  const size_t fsz = kWalFrameHeaderSize + 4096;
  std::string bad = wal;
  bad[kWalHeaderSize + 3 * fsz + kWalFrameHeaderSize + 100] ^= 0x40;  // page data of frame 3
  Scan s = ScanAll(bad);
  CHECK(s.frames == 3);
  CHECK(s.frames < all.frames);
  // A damaged header is refused outright.
  std::string badh = wal;
  badh[12] ^= 1;
  WalHeader h;
  Status st = ParseWalHeader(reinterpret_cast<const unsigned char*>(badh.data()), badh.size(), &h);
  CHECK(st.code() == Code::kCorruption);
}

TEST_CASE("a torn tail stops the scan before the torn frame", "[wal]") {
  test::TempDir dir;
  std::string wal = MakeWal(dir, 4096, 6);
  Scan all = ScanAll(wal);
  const size_t fsz = kWalFrameHeaderSize + 4096;
  std::string torn = wal.substr(0, wal.size() - fsz / 2);
  Scan s = ScanAll(torn);
  CHECK(s.frames == all.frames - 1);
}

TEST_CASE("invalid WAL headers are rejected with a reason", "[wal]") {
  unsigned char buf[32] = {0};
  WalHeader h;
  CHECK(ParseWalHeader(buf, 10, &h).code() == Code::kCorruption);
  CHECK(ParseWalHeader(buf, 32, &h).message().find("magic") != std::string::npos);
  PutBE32(buf, kWalMagicLE);
  PutBE32(buf + 4, kWalVersion);
  PutBE32(buf + 8, 1000);  // not a power of two
  CHECK(ParseWalHeader(buf, 32, &h).message().find("page size") != std::string::npos);
}
