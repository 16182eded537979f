// Writes the binary seed inputs of fuzz/corpus/segment and fuzz/corpus/wal:
// real objects made by SegmentBuilder and a real WAL written by SQLite (page
// size 512 to keep them small). Usage: fuzz_gen_corpus <corpus-dir>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "format/segment.h"
#include "util/coding.h"
#include "wal/wal_format.h"

using namespace replite;

static bool WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  std::printf("%s: %zu bytes\n", path.c_str(), data.size());
  return f.good();
}

static std::string Page(uint32_t pgno, uint32_t page_size) {
  std::string p(page_size, '\0');
  for (uint32_t i = 0; i < page_size; i++) p[i] = static_cast<char>((i % 7 == 0) ? pgno * 31 + i / 64 : 0);
  return p;
}

static std::string MakeObject(ObjectKind kind, int txs, uint32_t pages_per_tx, bool split, bool stream = true) {
  const uint32_t ps = 512;
  SegmentHeader h;
  h.kind = kind;
  h.page_size = ps;
  h.generation = "018f2a3b4c5d0001";
  StringSink sink;
  SegmentBuilder b(&sink, h, 3, stream);
  if (!b.Start().ok()) return "";
  uint64_t txid = 41;
  for (int t = 0; t < txs; t++) {
    txid++;
    std::vector<uint32_t> pgnos;
    std::string pages;
    for (uint32_t i = 0; i < pages_per_tx; i++) {
      pgnos.push_back(1 + i * (t + 1));
      pages += Page(pgnos.back(), ps);
    }
    const int64_t ts = 1700000000000 + t;
    if (split && pgnos.size() > 1) {  // one transaction over two blocks
      size_t half = pgnos.size() / 2;
      std::vector<uint32_t> a(pgnos.begin(), pgnos.begin() + half), c(pgnos.begin() + half, pgnos.end());
      if (!b.AddBlock(txid, ts, 50, 0x1111 * txid, 0, a, pages.substr(0, half * ps)).ok()) return "";
      if (!b.AddBlock(txid, ts, 50, 0x1111 * txid, kBlockTxEnd, c, pages.substr(half * ps)).ok()) return "";
    } else {
      if (!b.AddBlock(txid, ts, 50, 0x1111 * txid, kBlockTxEnd, pgnos, pages).ok()) return "";
    }
  }
  SegmentHeader f = h;
  f.first_txid = txs ? 42 : 41;
  f.last_txid = txs ? txid : 41;
  f.first_ts_ms = 1700000000000;
  f.last_ts_ms = 1700000000000 + txs;
  f.checksum_before = 0x1234;
  f.checksum_after = 0x1111 * txid;
  f.pages_before = 48;
  f.pages_after = 50;
  if (!b.Finish(f).ok()) return "";
  return sink.buffer();
}

static std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Rewrites a WAL with big-endian checksums (magic 0x377f0683), re-chaining
// every frame.
static std::string ToBigEndian(std::string w) {
  if (w.size() < kWalHeaderSize) return w;
  auto* d = reinterpret_cast<unsigned char*>(w.data());
  PutBE32(d, kWalMagicBE);
  uint32_t s1 = 0, s2 = 0;
  WalChecksum(true, d, 24, &s1, &s2);
  PutBE32(d + 24, s1);
  PutBE32(d + 28, s2);
  const uint32_t ps = GetBE32(d + 8);
  for (size_t off = kWalHeaderSize; off + kWalFrameHeaderSize + ps <= w.size(); off += kWalFrameHeaderSize + ps) {
    WalChecksum(true, d + off, 8, &s1, &s2);
    WalChecksum(true, d + off + kWalFrameHeaderSize, ps, &s1, &s2);
    PutBE32(d + off + 16, s1);
    PutBE32(d + off + 20, s2);
  }
  return w;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = true;
  ok &= WriteFile(dir + "/segment/segment_3tx", MakeObject(ObjectKind::kSegment, 3, 2, false));
  ok &= WriteFile(dir + "/segment/segment_split_tx", MakeObject(ObjectKind::kSegment, 1, 4, true));
  ok &= WriteFile(dir + "/segment/snapshot", MakeObject(ObjectKind::kSnapshot, 1, 3, false));
  ok &= WriteFile(dir + "/segment/segment_empty", MakeObject(ObjectKind::kSegment, 0, 0, false));
  ok &= WriteFile(dir + "/segment/segment_v1", MakeObject(ObjectKind::kSegment, 3, 2, true, /*stream=*/false));

  char tmpl[] = "/tmp/replite-fuzz-walXXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string db_path = std::string(tmpl) + "/db";
  sqlite3* db = nullptr;
  if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK) return 1;
  const char* sql =
      "PRAGMA page_size=512; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;"
      "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
      "INSERT INTO t(v) VALUES ('alpha'), ('beta');"
      "BEGIN; INSERT INTO t(v) SELECT hex(randomblob(40)) FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3); COMMIT;"
      "UPDATE t SET v = 'gamma' WHERE id = 1;";
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
    return 1;
  }
  const std::string wal = ReadAll(db_path + "-wal");  // read while the connection keeps it
  sqlite3_close(db);
  unlink((db_path + "-wal").c_str());
  unlink((db_path + "-shm").c_str());
  unlink(db_path.c_str());
  rmdir(tmpl);
  ok &= WriteFile(dir + "/wal/sqlite_le.wal", wal);
  ok &= WriteFile(dir + "/wal/sqlite_be.wal", ToBigEndian(wal));
  ok &= WriteFile(dir + "/wal/header_only.wal", wal.substr(0, kWalHeaderSize));
  return ok ? 0 : 1;
}
