// [wal] The WAL reader (lib/wal/wal_reader.h), its frame indexes
// (wal_index.h) and the wal-index header (wal_shm.h), on WAL files that
// SQLite itself wrote, damaged or rewritten the way crashes and restarts
// leave them, and on synthetic WALs larger than any read buffer.
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "core/sqlite_files.h"
#include "test_util.h"
#include "util/coding.h"
#include "util/file_util.h"
#include "wal/wal_index.h"
#include "wal/wal_reader.h"
#include "wal/wal_shm.h"

using namespace replite;

namespace {

// WAL bytes held in memory; records the largest single read.
class StringFile : public ReadableFile {
 public:
  explicit StringFile(std::string data) : data_(std::move(data)) {}
  Status Size(uint64_t* size) const override {
    *size = data_.size();
    return Status::OK();
  }
  Status Read(void* buf, size_t n, uint64_t offset, size_t* got) const override {
    max_read_ = std::max(max_read_, n);
    reads_++;
    *got = offset >= data_.size() ? 0 : std::min<size_t>(n, data_.size() - offset);
    bytes_read_ += *got;
    if (*got) std::memcpy(buf, data_.data() + offset, *got);
    return Status::OK();
  }
  const std::string& path() const override { return path_; }
  std::string& data() { return data_; }
  size_t max_read() const { return max_read_; }
  size_t reads() const { return reads_; }
  size_t bytes_read() const { return bytes_read_; }

 private:
  std::string data_;
  std::string path_ = "test-wal";
  mutable size_t max_read_ = 0, reads_ = 0, bytes_read_ = 0;
};

// Writes `txs` transactions with SQLite (the last one large, several
// frames) and returns the raw WAL bytes.
std::string SqliteWal(test::TempDir& dir, int page_size, int txs, uint32_t* db_pages = nullptr) {
  const std::string db = dir / ("w" + std::to_string(page_size) + ".db");
  test::Writer w(db, 0, page_size);
  w.Exec("CREATE TABLE t(x)");
  for (int i = 0; i < txs; i++) w.Exec("INSERT INTO t VALUES (randomblob(" + std::to_string(100 + i * 10) + "))");
  w.Exec("INSERT INTO t VALUES (randomblob(" + std::to_string(page_size * 5) + "))");
  if (db_pages) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(w.db(), "PRAGMA page_count", -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    *db_pages = static_cast<uint32_t>(sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
  }
  std::string wal;
  REQUIRE(ReadFileToString(db + "-wal", &wal).ok());
  return wal;
}

WalScan ScanFrom0(const StringFile& f, WalReader::Options o = {}) {
  WalReader r(o);
  REQUIRE(r.Open(&f).ok());
  REQUIRE(r.has_header());
  WalScan scan;
  REQUIRE(r.ScanCommitted(0, r.header_chain(), &scan).ok());
  return scan;
}

size_t FrameSize(const std::string& wal) { return kWalFrameHeaderSize + GetBE32(wal.data() + 8); }

// A WAL that no fixed buffer holds: `frames` frames of `page_size` with the
// given salts, a commit every `commit_every` frames (and at the end).
std::string SyntheticWal(uint32_t page_size, uint64_t frames, uint64_t commit_every, bool big_endian) {
  std::string b(kWalHeaderSize + frames * (kWalFrameHeaderSize + page_size), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(b.data());
  PutBE32(p + 4, kWalVersion);
  PutBE32(p + 8, page_size);
  PutBE32(p + 12, 3);
  PutBE32(p + 16, 0x11223344);
  PutBE32(p + 20, 0x55667788);
  for (uint64_t f = 0; f < frames; f++) {
    unsigned char* fh = p + WalFrameOffset(page_size, f);
    PutBE32(fh, static_cast<uint32_t>(f % 1000 + 1));
    const bool commit = (f + 1) % commit_every == 0 || f + 1 == frames;
    PutBE32(fh + 4, commit ? 1000 : 0);
    PutBE32(fh + 8, 0x11223344);
    PutBE32(fh + 12, 0x55667788);
    std::memset(fh + kWalFrameHeaderSize, static_cast<int>(f & 0xff), page_size);
  }
  return test::RechainWal(b, big_endian);
}

}  // namespace

TEST_CASE("WalReader finds every commit of a WAL written by SQLite", "[wal]") {
  test::TempDir dir;
  for (int ps : {512, 4096, 65536}) {
    INFO("page size " << ps);
    uint32_t db_pages = 0;
    StringFile f(SqliteWal(dir, ps, 5, &db_pages));
    WalReader r;
    REQUIRE(r.Open(&f).ok());
    REQUIRE(r.has_header());
    CHECK(r.page_size() == uint32_t(ps));
    WalScan scan;
    REQUIRE(r.ScanCommitted(0, r.header_chain(), &scan).ok());
    CHECK(scan.txs.size() == 7);  // CREATE, 5 small inserts, one large
    CHECK(scan.end == r.FramesInFile());
    CHECK(scan.verified_end == scan.end);
    CHECK(scan.stop == WalScanEnd::kEndOfFile);
    CHECK(scan.pgnos.size() == scan.end);
    CHECK(scan.txs.back().db_pages == db_pages);
    CHECK(scan.txs.back().end - scan.txs.back().first >= 5);  // the large one spans frames
    for (size_t i = 1; i < scan.txs.size(); i++) CHECK(scan.txs[i].first == scan.txs[i - 1].end);
  }
}

TEST_CASE("WalReader resumes a scan from a saved position and chain", "[wal]") {
  test::TempDir dir;
  StringFile f(SqliteWal(dir, 4096, 6));
  const WalScan all = ScanFrom0(f);
  REQUIRE(all.txs.size() == 8);
  // What a capture saw when only the first three transactions existed.
  const uint64_t mid = all.txs[2].end;
  StringFile early(f.data().substr(0, kWalHeaderSize + mid * FrameSize(f.data())));
  const WalScan first = ScanFrom0(early);
  REQUIRE(first.end == mid);
  WalReader r;
  REQUIRE(r.Open(&f).ok());
  WalScan rest;
  REQUIRE(r.ScanCommitted(mid, first.chain, &rest).ok());
  CHECK(rest.start == mid);
  CHECK(rest.end == all.end);
  CHECK(rest.chain == all.chain);
  CHECK(rest.txs.size() == all.txs.size() - 3);
  CHECK(std::equal(rest.pgnos.begin(), rest.pgnos.end(), all.pgnos.begin() + mid));
  // A wrong chain finds nothing, and a start past the file is no error.
  WalScan none;
  REQUIRE(r.ScanCommitted(mid, WalChain{first.chain.s1 + 1, first.chain.s2}, &none).ok());
  CHECK(none.txs.empty());
  CHECK(none.end == mid);
  CHECK(none.stop == WalScanEnd::kBrokenChain);
  REQUIRE(r.ScanCommitted(r.FramesInFile() + 100, r.header_chain(), &none).ok());
  CHECK(none.txs.empty());
}

TEST_CASE("an end hint sizes the scan's reads and never changes what it finds", "[wal]") {
  // A WAL that SQLite reuses after a checkpoint: the current epoch's 10
  // one-frame commits, then 90 frames of an older epoch (other salts).
  const uint32_t ps = 4096;
  const size_t fsz = kWalFrameHeaderSize + ps;
  std::string b = SyntheticWal(ps, 100, 1, false);
  for (uint64_t fr = 10; fr < 100; fr++) PutBE32(reinterpret_cast<unsigned char*>(&b[WalFrameOffset(ps, fr) + 8]), 7);
  StringFile f(b);
  const WalScan plain = ScanFrom0(f);
  REQUIRE(plain.end == 10);
  REQUIRE(plain.stop == WalScanEnd::kForeignFrame);
  WalReader r;
  REQUIRE(r.Open(&f).ok());
  // Every hint, wrong or right, finds the same transactions from every start.
  for (uint64_t start : {0, 3, 9, 10}) {
    WalChain chain = r.header_chain();
    if (start > 0) {  // the chain after frame start - 1
      WalScan upto;
      StringFile head(b.substr(0, kWalHeaderSize + start * fsz));
      WalReader hr;
      REQUIRE(hr.Open(&head).ok());
      REQUIRE(hr.ScanCommitted(0, hr.header_chain(), &upto).ok());
      REQUIRE(upto.end == start);
      chain = upto.chain;
    }
    WalScan base;
    REQUIRE(r.ScanCommitted(start, chain, &base).ok());
    for (uint64_t hint : {uint64_t(0), uint64_t(1), start, start + 1, uint64_t(9), uint64_t(10), uint64_t(11),
                          uint64_t(50), uint64_t(100), uint64_t(1000)}) {
      INFO("start " << start << " hint " << hint);
      WalScan h;
      REQUIRE(r.ScanCommitted(start, chain, &h, hint).ok());
      CHECK(h.end == base.end);
      CHECK(h.verified_end == base.verified_end);
      CHECK(h.chain == base.chain);
      CHECK(h.stop == base.stop);
      CHECK(h.txs.size() == base.txs.size());
      CHECK(h.pgnos == base.pgnos);
    }
  }
  // The last commit's capture: without a hint it reads 8 frames (7 of them
  // the older epoch's), with the wal-index's end its frame and the next
  // frame's header, in one read.
  WalScan last;
  WalScan upto;
  StringFile head(b.substr(0, kWalHeaderSize + 9 * fsz));
  WalReader hr;
  REQUIRE(hr.Open(&head).ok());
  REQUIRE(hr.ScanCommitted(0, hr.header_chain(), &upto).ok());
  StringFile g(b);
  WalReader gr;
  REQUIRE(gr.Open(&g).ok());
  const size_t before = g.bytes_read();
  REQUIRE(gr.ScanCommitted(9, upto.chain, &last).ok());
  CHECK(last.end == 10);
  CHECK(g.bytes_read() - before == 8 * fsz);
  const size_t mid = g.bytes_read(), mid_reads = g.reads();
  REQUIRE(gr.ScanCommitted(9, upto.chain, &last, 10).ok());
  CHECK(last.end == 10);
  CHECK(last.stop == WalScanEnd::kForeignFrame);
  CHECK(g.bytes_read() - mid == fsz + kWalFrameHeaderSize);
  CHECK(g.reads() - mid_reads == 1);
  // That one read holds the whole capture: a cursor given the scan reads
  // its page from there, the same bytes as a cursor that reads the file.
  REQUIRE(last.buf != nullptr);
  CHECK(last.buf_first == 9);
  CHECK(last.buf_frames == 1);
  WalFrameCursor kept(&gr, last.end), fresh(&gr, last.end);
  kept.UseScan(last);
  const char* kept_page = nullptr;
  const char* fresh_page = nullptr;
  const size_t before_page = g.reads();
  REQUIRE(kept.Page(9, last.pgnos[0], &kept_page).ok());
  CHECK(g.reads() == before_page);
  REQUIRE(fresh.Page(9, last.pgnos[0], &fresh_page).ok());
  CHECK(g.reads() == before_page + 1);
  CHECK(std::memcmp(kept_page, fresh_page, ps) == 0);
  CHECK(kept.Page(9, last.pgnos[0] + 1, &kept_page).code() == Code::kUnavailable);  // still checks the page number
  // A scan whose reads did not hold all of it keeps nothing.
  REQUIRE(gr.ScanCommitted(0, r.header_chain(), &last, 2).ok());
  CHECK(last.end == 10);
  CHECK(last.buf == nullptr);
}

TEST_CASE("WalReader stops before a torn tail and an uncommitted transaction", "[wal]") {
  test::TempDir dir;
  StringFile f(SqliteWal(dir, 4096, 4));
  const WalScan all = ScanFrom0(f);
  const WalTx last = all.txs.back();
  REQUIRE(last.end - last.first >= 2);
  const size_t fsz = FrameSize(f.data());
  SECTION("the file ends inside the commit frame") {
    StringFile torn(f.data().substr(0, f.data().size() - fsz / 2));
    const WalScan s = ScanFrom0(torn);
    CHECK(s.end == last.first);
    CHECK(s.txs.size() == all.txs.size() - 1);
    CHECK(s.verified_end == last.end - 1);  // the large transaction's other frames verify
    CHECK(s.stop == WalScanEnd::kPartialFrame);
  }
  SECTION("the commit frame never reached the file") {
    StringFile cut(f.data().substr(0, f.data().size() - fsz));
    const WalScan s = ScanFrom0(cut);
    CHECK(s.end == last.first);
    CHECK(s.verified_end == last.end - 1);
    CHECK(s.stop == WalScanEnd::kEndOfFile);
    CHECK(s.pgnos.size() == s.end);  // an uncommitted transaction's pages are not reported
  }
  SECTION("a WAL shorter than its header has none") {
    StringFile tiny(f.data().substr(0, kWalHeaderSize - 1));
    WalReader r;
    WalScan scan;
    CHECK(r.ScanCommitted(0, WalChain{}, &scan).code() == Code::kInternal);  // not opened: no crash
    REQUIRE(r.Open(&tiny).ok());
    CHECK_FALSE(r.has_header());
    CHECK(r.FramesInFile() == 0);
    CHECK(r.ScanCommitted(0, WalChain{}, &scan).code() == Code::kInternal);
  }
}

TEST_CASE("WalReader stops at a flipped byte and at a foreign frame", "[wal]") {
  test::TempDir dir;
  StringFile f(SqliteWal(dir, 4096, 6));
  const WalScan all = ScanFrom0(f);
  const size_t fsz = FrameSize(f.data());
  const WalTx victim = all.txs[3];
  SECTION("page data") {
    StringFile bad(f.data());
    bad.data()[kWalHeaderSize + victim.first * fsz + kWalFrameHeaderSize + 100] ^= 0x40;
    const WalScan s = ScanFrom0(bad);
    CHECK(s.end == victim.first);
    CHECK(s.txs.size() == 3);
    CHECK(s.stop == WalScanEnd::kBrokenChain);
  }
  SECTION("a salt: the frame of an older epoch") {
    StringFile bad(f.data());
    bad.data()[kWalHeaderSize + victim.first * fsz + 9] ^= 0x01;
    const WalScan s = ScanFrom0(bad);
    CHECK(s.end == victim.first);
    CHECK(s.stop == WalScanEnd::kForeignFrame);
  }
  SECTION("the header") {
    StringFile bad(f.data());
    bad.data()[12] ^= 1;
    WalReader r;
    REQUIRE(r.Open(&bad).ok());
    CHECK_FALSE(r.has_header());  // SQLite treats it as an empty WAL
    WalHeader h;
    CHECK(r.ReadHeader(&h).code() == Code::kCorruption);
  }
}

TEST_CASE("WalReader sees a WAL restart as new salts and refuses rewritten frames", "[wal]") {
  test::TempDir dir;
  const std::string db = dir / "r.db";
  test::Writer w(db, 0, 4096);
  w.Exec("CREATE TABLE t(x)");
  for (int i = 0; i < 20; i++) w.Exec("INSERT INTO t VALUES (randomblob(3000))");
  std::string before;
  REQUIRE(ReadFileToString(db + "-wal", &before).ok());
  int log = 0, ckpt = 0;
  REQUIRE(sqlite3_wal_checkpoint_v2(w.db(), "main", SQLITE_CHECKPOINT_PASSIVE, &log, &ckpt) == SQLITE_OK);
  REQUIRE(log == ckpt);
  w.Exec("INSERT INTO t VALUES (1)");  // restarts the WAL: frames from the front, new salts
  std::string after;
  REQUIRE(ReadFileToString(db + "-wal", &after).ok());
  REQUIRE(after.size() == before.size());  // the old frames stay past the new ones

  StringFile f(before);
  WalReader r;
  REQUIRE(r.Open(&f).ok());
  const WalHeader old_hdr = r.header();
  WalScan old_scan;
  REQUIRE(r.ScanCommitted(0, r.header_chain(), &old_scan).ok());
  REQUIRE(old_scan.txs.size() == 21);
  std::string page(4096, '\0');
  REQUIRE(r.ReadPage(0, old_scan.pgnos[0], page.data()).ok());

  f.data() = after;  // the restart happens under an open reader
  CHECK(r.ReadPage(0, old_scan.pgnos[0], page.data()).code() == Code::kUnavailable);
  WalReader r2;
  REQUIRE(r2.Open(&f).ok());
  CHECK(r2.header().salt1 == old_hdr.salt1 + 1);
  CHECK(r2.header().salt2 != old_hdr.salt2);
  WalScan new_scan;
  REQUIRE(r2.ScanCommitted(0, r2.header_chain(), &new_scan).ok());
  CHECK(new_scan.txs.size() == 1);
  CHECK(new_scan.stop == WalScanEnd::kForeignFrame);  // the old epoch's next frame
  // The old chain does not continue into the new epoch.
  WalScan cont;
  REQUIRE(r2.ScanCommitted(old_scan.end, old_scan.chain, &cont).ok());
  CHECK(cont.txs.empty());
}

TEST_CASE("WalReader verifies big-endian checksums like little-endian ones", "[wal]") {
  test::TempDir dir;
  StringFile le(SqliteWal(dir, 4096, 4));
  StringFile be(test::RechainWal(le.data(), true));
  const WalScan a = ScanFrom0(le), b = ScanFrom0(be);
  CHECK(b.end == a.end);
  CHECK(b.txs.size() == a.txs.size());
  CHECK(b.pgnos == a.pgnos);
  CHECK(b.chain != a.chain);
  WalReader r;
  REQUIRE(r.Open(&be).ok());
  CHECK(r.header().big_endian_cksum());
  // Big-endian sums under a little-endian magic do not verify.
  StringFile mixed(be.data());
  PutBE32(mixed.data().data(), kWalMagicLE);
  WalReader m;
  REQUIRE(m.Open(&mixed).ok());
  CHECK_FALSE(m.has_header());
}

TEST_CASE("WalReader scans a transaction larger than any read buffer in bounded reads", "[wal]") {
  // One transaction of 40,000 frames (about 21 MB), in each byte order;
  // the scan reads at most max_read_bytes at a time, however many reads
  // that takes (a doubling read size once overflowed and ended the scan
  // silently after about 61 reads).
  for (bool big_endian : {false, true}) {
    INFO("big-endian " << big_endian);
    const uint64_t kFrames = 40000;
    StringFile f(SyntheticWal(512, kFrames, kFrames, big_endian));
    const WalScan s = ScanFrom0(f);
    CHECK(s.end == kFrames);
    REQUIRE(s.txs.size() == 1);
    CHECK(s.txs[0].end == kFrames);
    CHECK(s.pgnos.size() == kFrames);
    CHECK(f.max_read() <= (1u << 20));

    StringFile g(f.data());
    WalReader::Options one_frame;
    one_frame.max_read_bytes = kWalFrameHeaderSize + 512;
    const WalScan t = ScanFrom0(g, one_frame);
    CHECK(t.end == kFrames);
    CHECK(t.chain == s.chain);
    CHECK(g.max_read() <= one_frame.max_read_bytes);
    CHECK(g.reads() > kFrames);
  }
  // Many transactions across read boundaries end exactly where they should.
  StringFile m(SyntheticWal(1024, 5000, 7, false));
  WalReader::Options small;
  small.max_read_bytes = 10 * (kWalFrameHeaderSize + 1024) + 5;
  const WalScan s = ScanFrom0(m, small);
  CHECK(s.end == 5000);
  CHECK(s.txs.size() == 5000 / 7 + 1);
}

TEST_CASE("WalPageIndex maps each page to its latest frame", "[wal]") {
  test::TempDir dir;
  StringFile f(SqliteWal(dir, 4096, 8));
  WalReader r;
  REQUIRE(r.Open(&f).ok());
  WalScan scan;
  REQUIRE(r.ScanCommitted(0, r.header_chain(), &scan).ok());
  std::map<uint32_t, uint64_t> expect;
  for (uint64_t i = 0; i < scan.end; i++) expect[scan.pgnos[i]] = i;

  WalPageIndex idx;
  std::vector<uint32_t> pgnos;
  REQUIRE(idx.AddFrames(r, 0, scan.end, &pgnos).ok());
  CHECK(pgnos == scan.pgnos);
  CHECK(idx.size() == expect.size());
  for (const auto& [pgno, frame] : expect) {
    uint64_t got = 0;
    REQUIRE(idx.Find(pgno, &got));
    CHECK(got == frame);
  }
  uint64_t unused = 0;
  CHECK_FALSE(idx.Find(999999, &unused));
  // The same from page numbers already known (a kept WalFrameIndex).
  WalPageIndex known;
  known.AddKnown(0, scan.pgnos.data(), scan.pgnos.size());
  for (const auto& [pgno, frame] : expect) {
    uint64_t got = 0;
    REQUIRE(known.Find(pgno, &got));
    CHECK(got == frame);
  }
  // Reading past the file is a retryable error, not garbage.
  CHECK(idx.AddFrames(r, scan.end, scan.end + 1).code() == Code::kUnavailable);

  // Per transaction: the frames holding the last version of each page it
  // wrote, in frame order, each page once.
  for (const WalTx& tx : scan.txs) {
    std::vector<uint64_t> frames;
    TxFinalFrames(scan, tx, &frames);
    std::set<uint32_t> pages, written;
    for (size_t i = 0; i < frames.size(); i++) {
      const uint64_t frame = frames[i];
      if (i > 0) CHECK(frame > frames[i - 1]);
      CHECK(frame >= tx.first);
      CHECK(frame < tx.end);
      CHECK(pages.insert(scan.pgnos[frame]).second);
      for (uint64_t later = frame + 1; later < tx.end; later++) CHECK(scan.pgnos[later] != scan.pgnos[frame]);
    }
    for (uint64_t f = tx.first; f < tx.end; f++) written.insert(scan.pgnos[f]);
    CHECK(pages == written);
  }

  WalFrameIndex fi;
  fi.salt1 = r.header().salt1;
  fi.salt2 = r.header().salt2;
  fi.pgnos = scan.pgnos;
  CHECK(fi.Covers(r.header(), scan.end));
  CHECK_FALSE(fi.Covers(r.header(), scan.end + 1));
  WalHeader other = r.header();
  other.salt1++;
  CHECK_FALSE(fi.Covers(other, 1));
}

TEST_CASE("the wal-index header gives mxFrame and the backfill counters", "[wal]") {
  unsigned char hdr[kWalIndexHeaderSize] = {0};
  const uint32_t mx = 77, nb = 40, na = 50;
  std::memcpy(hdr + 16, &mx, 4);
  std::memcpy(hdr + 96, &nb, 4);
  std::memcpy(hdr + 128, &na, 4);
  const WalIndexInfo i = ParseWalIndexHeader(hdr);
  CHECK(i.mx_frame == mx);
  CHECK(i.n_backfill == nb);
  CHECK(i.n_backfill_attempted == na);

  // Read from a live database through SQLite's own mapping.
  test::TempDir dir;
  const std::string db = dir / "s.db";
  test::Writer w(db, 0, 4096);
  w.Exec("CREATE TABLE t(x)");
  for (int i = 0; i < 10; i++) w.Exec("INSERT INTO t VALUES (randomblob(500))");
  sqlite3* r = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &r) == SQLITE_OK);
  char* err = nullptr;
  REQUIRE(sqlite3_exec(r, "BEGIN; SELECT count(*) FROM t;", nullptr, nullptr, &err) == SQLITE_OK);
  SqliteFileRef wal;
  REQUIRE(SqliteFileRef::Wal(r, db, &wal).ok());
  WalReader reader;
  REQUIRE(reader.Open(&wal).ok());
  const uint64_t frames = reader.FramesInFile();
  WalIndexInfo live;
  REQUIRE(ReadWalIndexInfo(r, &live));
  CHECK(live.mx_frame == frames);
  CHECK(live.n_backfill == 0);
  CHECK(live.n_backfill_attempted == 0);
  int log = 0, ckpt = 0;
  REQUIRE(sqlite3_wal_checkpoint_v2(w.db(), "main", SQLITE_CHECKPOINT_PASSIVE, &log, &ckpt) == SQLITE_OK);
  REQUIRE(ReadWalIndexInfo(r, &live));
  CHECK(live.n_backfill == uint32_t(ckpt));
  CHECK(live.n_backfill_attempted == uint32_t(ckpt));
  CHECK(uint64_t(ckpt) == frames);
  REQUIRE(sqlite3_exec(r, "COMMIT", nullptr, nullptr, &err) == SQLITE_OK);
  sqlite3_close(r);
}

TEST_CASE("WalFrameCursor reads a transaction's final frames in big reads and refuses rewritten ones", "[wal]") {
  // A transaction larger than its page cache (SQLite spills pages to the
  // WAL before the commit; since 3.11 a page spilled twice in one
  // transaction is rewritten in place, so each page has one frame).
  test::TempDir dir;
  const std::string db = dir / "spill.db";
  test::Writer w(db, 0);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  w.Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
         "INSERT INTO t(v) SELECT randomblob(300) FROM n");
  w.Exec("PRAGMA cache_size=10");
  w.Exec("BEGIN");
  for (int pass = 0; pass < 3; pass++) w.Exec("UPDATE t SET v = randomblob(300)");
  w.Exec("COMMIT");
  std::string wal;
  REQUIRE(ReadFileToString(db + "-wal", &wal).ok());
  StringFile f(wal);
  WalReader r;
  REQUIRE(r.Open(&f).ok());
  WalScan scan;
  REQUIRE(r.ScanCommitted(0, r.header_chain(), &scan).ok());
  REQUIRE(scan.txs.size() == 3);
  const WalTx& tx = scan.txs.back();
  std::vector<uint64_t> frames;
  TxFinalFrames(scan, tx, &frames);
  std::set<uint32_t> written;
  for (uint64_t fr = tx.first; fr < tx.end; fr++) written.insert(scan.pgnos[fr - scan.start]);
  INFO("frames " << tx.end - tx.first << ", pages " << written.size());
  REQUIRE(written.size() > 100);
  REQUIRE(frames.size() == written.size());

  // The cursor gives what ReadPage gives, in reads of the chunk size.
  const size_t reads_before = f.reads();
  WalFrameCursor cursor(&r, scan.end, 64 * 1024);
  std::string page(4096, '\0');
  for (uint64_t fr : frames) {
    const uint32_t pgno = scan.pgnos[fr - scan.start];
    const char* p = nullptr;
    REQUIRE(cursor.Page(fr, pgno, &p).ok());
    REQUIRE(r.ReadPage(fr, pgno, page.data()).ok());
    REQUIRE(std::memcmp(p, page.data(), 4096) == 0);
  }
  const size_t chunks = (tx.end - frames.front() + 15) / 16 + 1;  // 16 frames per 64 KiB read
  CHECK(f.reads() - reads_before <= chunks + frames.size());       // ReadPage's reads, plus the cursor's chunks
  // Asking for the wrong page, or past the scanned end, is refused.
  const char* p = nullptr;
  CHECK(cursor.Page(frames[0], scan.pgnos[frames[0] - scan.start] + 1, &p).code() == Code::kUnavailable);
  CHECK(cursor.Page(scan.end, 1, &p).code() == Code::kInternal);
  // A WAL rewritten under the cursor (a restart) is seen, not read as pages.
  WalFrameCursor fresh(&r, scan.end, 64 * 1024);
  for (size_t i = kWalHeaderSize; i < f.data().size(); i += FrameSize(wal)) f.data()[i + 8] ^= 1;  // other salt1
  CHECK(fresh.Page(frames[0], scan.pgnos[frames[0] - scan.start], &p).code() == Code::kUnavailable);
}
