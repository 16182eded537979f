// [restore] BlockPrefetcher (restore/block_prefetcher.h): the wanted blocks
// of an object arrive in index order with their page hashes whatever the
// number of threads, stream objects included; damage and a caller's error
// stop it at the right block; memory stays within a few batches.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "format/segment.h"
#include "replite/replite.h"
#include "replica/object_reader.h"
#include "restore/block_prefetcher.h"
#include "store/file_store.h"
#include "test_util.h"
#include "util/hash.h"

using namespace replite;

namespace {

constexpr uint32_t kPs = 4096;

// Page `pg` of transaction `tx`: incompressible, so that a block of 64
// pages is ~256 KiB compressed and an object spans many batches.
std::string PageOf(uint64_t tx, uint32_t pg) {
  std::string p(kPs, '\0');
  std::mt19937_64 rng(tx * 1000003 + pg);
  for (size_t i = 0; i < kPs; i += 8) {
    const uint64_t v = rng();
    std::memcpy(&p[i], &v, 8);
  }
  return p;
}

// An object of `blocks` blocks of 64 pages each in FileStore `store` at
// `key`: one transaction (txid 5) spread over the blocks, or with `multi`
// one transaction per block, each writing pages 1..64 again.
uint64_t Put(ObjectStore* store, const std::string& key, int blocks, bool stream, bool multi) {
  SegmentHeader h;
  h.page_size = kPs;
  h.generation = "0123456789abcdef";
  h.kind = stream ? ObjectKind::kSegment : ObjectKind::kSnapshot;
  StringSink sink;
  SegmentBuilder b(&sink, h, 1, stream);
  REQUIRE(b.Start().ok());
  for (int k = 0; k < blocks; k++) {
    const uint64_t tx = multi ? uint64_t(5 + k) : 5;
    std::vector<uint32_t> pg;
    std::string data;
    for (uint32_t j = 0; j < 64; j++) {
      pg.push_back(multi ? 1 + j : uint32_t(k * 64 + 1 + j));
      data += PageOf(tx, pg.back());
    }
    const bool end = multi || k + 1 == blocks;
    REQUIRE(b.AddBlock(tx, 1000, uint32_t(multi ? 64 : blocks * 64), 0, end ? kBlockTxEnd : 0, pg, data).ok());
  }
  SegmentHeader f;
  f.first_txid = 5;
  f.last_txid = multi ? uint64_t(5 + blocks - 1) : 5;
  REQUIRE(b.Finish(f).ok());
  REQUIRE(store->Put(key, sink.buffer()).ok());
  return sink.buffer().size();
}

// Takes blocks from `pf` until its end or an error: how many, and the error.
Status Drain(BlockPrefetcher& pf, size_t* got) {
  *got = 0;
  for (;;) {
    ReadyBlock rb;
    bool done = false;
    Status s = pf.Next(&rb, &done);
    if (!s.ok() || done) return s;
    (*got)++;
  }
}

}  // namespace

TEST_CASE("BlockPrefetcher delivers the wanted blocks in order with their page hashes", "[restore]") {
  test::TempDir dir;
  auto store = NewFileStore(dir.path());
  for (bool stream : {false, true}) {
    const uint64_t size = Put(store.get(), "obj", 60, stream, /*multi=*/stream);
    REQUIRE(size > 3 * BlockPrefetcher::kBatchBytes);  // several batches
    ObjectReader rd(store.get(), "obj", size);
    REQUIRE(rd.Open().ok());
    for (int threads : {0, 1, 4}) {
      INFO("stream " << stream << ", threads " << threads);
      std::vector<bool> want(60);
      for (size_t i = 0; i < want.size(); i++) want[i] = i % 7 != 3 && i != 0 && i != 59;
      BlockPrefetcher pf(&rd, want, threads);
      size_t expect = 0, got = 0;
      for (;;) {
        ReadyBlock rb;
        bool done = false;
        REQUIRE(pf.Next(&rb, &done).ok());
        if (done) break;
        while (!want[expect]) expect++;
        REQUIRE(rb.index == expect);
        expect++;
        got++;
        const uint64_t tx = stream ? 5 + rb.index : 5;
        REQUIRE(rb.block.txid == tx);
        REQUIRE(rb.block.pgnos.size() == 64);
        REQUIRE(rb.hashes.size() == 64);
        for (size_t k = 0; k < 64; k += 21) {
          const std::string page = PageOf(tx, rb.block.pgnos[k]);
          CHECK(rb.block.pages.compare(k * kPs, kPs, page) == 0);
          CHECK(rb.hashes[k] == PageHash(rb.block.pgnos[k], page.data(), kPs));
        }
      }
      CHECK(got == size_t(std::count(want.begin(), want.end(), true)));
    }
  }
}

TEST_CASE("BlockPrefetcher stops at a damaged block after delivering the ones before it", "[restore]") {
  test::TempDir dir;
  auto store = NewFileStore(dir.path());
  const uint64_t size = Put(store.get(), "obj", 60, /*stream=*/false, /*multi=*/false);
  ObjectReader clean(store.get(), "obj", size);
  REQUIRE(clean.Open().ok());
  const uint64_t bad_off = clean.index()[41].offset + 100;
  // Flip one byte of block 41 in the stored object.
  std::string bytes;
  REQUIRE(store->Get("obj", &bytes).ok());
  bytes[bad_off] ^= 0x5a;
  REQUIRE(store->Put("obj", bytes).ok());
  ObjectReader rd(store.get(), "obj", size);
  REQUIRE(rd.Open().ok());
  for (int threads : {0, 4}) {
    INFO("threads " << threads);
    BlockPrefetcher pf(&rd, std::vector<bool>(60, true), threads);
    size_t got = 0;
    const Status s = Drain(pf, &got);
    CHECK(s.code() == Code::kCorruption);
    CHECK(s.message().find("obj block 41") != std::string::npos);
    CHECK(got == 41);
  }
}

TEST_CASE("BlockPrefetcher hands each block to the caller's writer once and returns its error", "[restore]") {
  test::TempDir dir;
  auto store = NewFileStore(dir.path());
  const uint64_t size = Put(store.get(), "obj", 60, /*stream=*/false, /*multi=*/false);
  ObjectReader rd(store.get(), "obj", size);
  REQUIRE(rd.Open().ok());
  std::atomic<int> calls{0};
  {
    BlockPrefetcher pf(&rd, std::vector<bool>(60, true), 4, [&](ReadyBlock* rb) {
      calls++;
      return rb->index == 33 ? Status::IOError("disk full writing block 33") : Status::OK();
    });
    size_t got = 0;
    const Status s = Drain(pf, &got);
    CHECK(s.code() == Code::kIOError);
    CHECK(got == 33);
  }
  CHECK(calls >= 34);
  CHECK(calls <= 60);
}

TEST_CASE("a restore of a snapshot many batches long is exact and refuses a damaged block in its middle", "[restore]") {
  test::TempDir dir;
  const std::string db = dir / "a.db";
  {
    // SQLite's defaults (autocheckpoint on); ~24 MB of incompressible rows
    // so the snapshot is read in several ranged batches on 4 threads.
    test::Writer w(db, /*autocheckpoint=*/1000);
    w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
    w.Exec("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 6000) "
           "INSERT INTO t(v) SELECT randomblob(4000) FROM n");
  }
  auto r = test::OpenManual(dir, dir.url("replica"));
  REQUIRE(r->Add(db).ok());
  REQUIRE(r->Sync(db).ok());
  {
    test::Writer w(db, 1000);
    w.Exec("UPDATE t SET v = randomblob(100) WHERE id % 97 = 0");
  }
  REQUIRE(r->Sync(db).ok());
  r->Close();
  const std::string want = test::DumpContent(db);
  RestoreOptions ro;
  ro.parallelism = 4;
  RestoreResult res;
  Status s = Restore(dir.url("replica"), dir / "out.db", ro, &res);
  REQUIRE(s.ok());
  CHECK(res.checksum_verified);
  CHECK(test::DumpContent(dir / "out.db") == want);
  CHECK(test::IntegrityCheck(dir / "out.db") == "ok\n");

  // One byte of the snapshot's middle block changed: refused, named.
  std::string snap;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir / "replica"))
    if (e.path().string().find("snapshots/") != std::string::npos) snap = e.path().string();
  REQUIRE(!snap.empty());
  REQUIRE(std::filesystem::file_size(snap) > 3 * BlockPrefetcher::kBatchBytes);
  {
    std::fstream f(snap, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(std::filesystem::file_size(snap) / 2));
    f.put('\x5a');
  }
  s = Restore(dir.url("replica"), dir / "out2.db", ro, &res);
  CHECK(s.code() == Code::kCorruption);
  CHECK(s.message().find("snapshots/") != std::string::npos);
  CHECK(!std::filesystem::exists(dir / "out2.db"));
}
