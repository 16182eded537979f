// PositionStore (core/position_store.h): Load reads on its own connection,
// so it never waits for a flush, and still sees the newest position: queued,
// in the batch a flush is writing, or saved.
#include <catch2/catch.hpp>

#include <atomic>
#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>

#include "core/position_store.h"
#include "test_util.h"

using namespace replite;

namespace {

Position At(uint64_t txid) {
  Position p;
  p.gen = 7;
  p.txid = txid;
  p.page_size = 4096;
  return p;
}

uint64_t Loaded(PositionStore& ps, const std::string& path, bool* found) {
  Position p;
  int64_t ws = 0, wm = 0;
  REQUIRE(ps.Load(path, "file:///r/" + path, &p, found, &ws, &wm).ok());
  return p.txid;
}

}  // namespace

TEST_CASE("positions: Load finds a position queued and saved and after a reopen", "[positions]") {
  test::TempDir dir;
  const std::string file = dir / "positions.db";
  {
    PositionStore ps;
    REQUIRE(ps.Open(file).ok());
    bool found = true;
    Loaded(ps, "a", &found);
    CHECK_FALSE(found);
    ps.Put("a", "file:///r/a", At(5), 10, 20);
    CHECK(Loaded(ps, "a", &found) == 5);
    CHECK(found);
    REQUIRE(ps.Flush().ok());
    CHECK(Loaded(ps, "a", &found) == 5);
    CHECK(found);
    CHECK(ps.MemoryBytes() > 0);
  }
  PositionStore again;
  REQUIRE(again.Open(file).ok());
  bool found = false;
  CHECK(Loaded(again, "a", &found) == 5);
  CHECK(found);
  // A position for another replica URL is not ours.
  Position p;
  int64_t ws = 0, wm = 0;
  REQUIRE(again.Load("a", "file:///elsewhere/a", &p, &found, &ws, &wm).ok());
  CHECK_FALSE(found);
}

TEST_CASE("positions: Load during flushes always sees the newest position", "[positions]") {
  test::TempDir dir;
  PositionStore ps;
  REQUIRE(ps.Open(dir / "positions.db").ok());
  std::atomic<bool> stop{false};
  std::thread flusher([&] {
    while (!stop) ps.Flush();
  });
  // Each Put is followed by Loads, racing the flusher's batches: the batch
  // being written must stay visible until it is saved.
  int wrong = 0;
  for (uint64_t txid = 1; txid <= 3000; txid++) {
    const std::string path = "db" + std::to_string(txid % 50);
    ps.Put(path, "file:///r/" + path, At(txid), 1, 2);
    for (int k = 0; k < 3; k++) {
      bool found = false;
      if (Loaded(ps, path, &found) != txid || !found) wrong++;
    }
  }
  stop = true;
  flusher.join();
  CHECK(wrong == 0);
}

// A Load after a Flush reads what the flush wrote, also when Loads ran
// before it (the reader connection must not keep an older snapshot), and
// Loads with no flush between them read the same.
TEST_CASE("positions: a Load after a flush reads what the flush wrote", "[positions]") {
  test::TempDir dir;
  PositionStore ps;
  REQUIRE(ps.Open(dir / "positions.db").ok());
  ps.Put("a", "file:///r/a", At(1), 1, 2);
  ps.Put("b", "file:///r/b", At(1), 1, 2);
  REQUIRE(ps.Flush().ok());
  bool found = false;
  CHECK(Loaded(ps, "b", &found) == 1);
  for (uint64_t txid = 2; txid < 2 + 3 * 256; txid++) {
    ps.Put("a", "file:///r/a", At(txid), 1, 2);
    REQUIRE(ps.Flush().ok());
    CHECK(Loaded(ps, "a", &found) == txid);
    CHECK(found);
    CHECK(Loaded(ps, "b", &found) == 1);
  }
  for (int i = 0; i < 512; i++) REQUIRE(Loaded(ps, "b", &found) == 1);
}

// positions.db's WAL restarts from its beginning only when every frame is
// checkpointed and no reader holds a snapshot in it. Loads' shared read
// transactions are open most of the time at 100,000 databases (parked ones
// waking): if one straddled every commit, the checkpoint could never finish
// and the WAL would only grow, a flush's worth each second.
TEST_CASE("positions: positions.db's WAL stays bounded while Loads never stop", "[positions]") {
  test::TempDir dir;
  PositionStore ps;
  REQUIRE(ps.Open(dir / "positions.db").ok());
  std::atomic<bool> stop{false};
  std::thread loader([&] {
    for (uint64_t i = 0; !stop; i++) {
      bool found = false;
      Loaded(ps, "db" + std::to_string(i % 2000), &found);
    }
  });
  uint64_t max_wal = 0;
  for (uint64_t round = 1; round <= 300; round++) {
    for (int i = 0; i < 2000; i++) {
      const std::string path = "db" + std::to_string(i);
      ps.Put(path, "file:///r/" + path, At(round), 1, 2);
    }
    REQUIRE(ps.Flush().ok());
    std::error_code ec;
    max_wal = std::max<uint64_t>(max_wal, std::filesystem::file_size(dir / "positions.db-wal", ec));
  }
  stop = true;
  loader.join();
  // One flush writes ~60 pages; the checkpoint threshold is 1,000 pages
  // (~4 MiB): a WAL that restarts stays near it, one that never does grows
  // past 70 MB here.
  CHECK(max_wal < (12u << 20));
  bool found = false;
  CHECK(Loaded(ps, "db7", &found) == 300);
}

// Issue 20: a parked database's session state (status counters, lease
// epoch, last compaction) is saved after its position's fields, for this
// store only (a later Replicator starts from zero), and the position reads
// the same with or without it: an older binary's Position::Decode stops
// before it.
TEST_CASE("positions: the session state saved with a position is this store's only", "[positions]") {
  test::TempDir dir;
  const std::string file = dir / "positions.db";
  Position want = At(9);
  want.frames = 12;
  want.db_mtime_ns = 1234567890123;
  SessionState c;
  c.bytes = 1ull << 40;
  c.last_sync_ms = 1767225600123;
  c.segments = 4000000000u;
  c.snapshots = 2;
  c.checkpoints = 3;
  c.generations = 1;
  c.lease_epoch = 7;
  c.compacted_s = 1767225600;
  auto load = [&](PositionStore& ps, SessionState* got) {
    Position p;
    bool found = false;
    int64_t ws = 0, wm = 0;
    REQUIRE(ps.Load("a", "file:///r/a", &p, &found, &ws, &wm, got).ok());
    REQUIRE(found);
    CHECK(p.Encode() == want.Encode());
    CHECK(ws == 10);
    CHECK(wm == 20);
  };
  {
    PositionStore ps;
    REQUIRE(ps.Open(file).ok());
    ps.Put("a", "file:///r/a", want, 10, 20, &c);
    for (int flushed = 0; flushed < 2; flushed++) {
      SessionState got;
      load(ps, &got);
      CHECK(got.bytes == c.bytes);
      CHECK(got.last_sync_ms == c.last_sync_ms);
      CHECK(got.segments == c.segments);
      CHECK(got.snapshots == c.snapshots);
      CHECK(got.checkpoints == c.checkpoints);
      CHECK(got.generations == c.generations);
      CHECK(got.lease_epoch == c.lease_epoch);
      CHECK(got.compacted_s == c.compacted_s);
      REQUIRE(ps.Flush().ok());
    }
    // What an older binary reads: the position's fields alone.
    Position old;
    REQUIRE(Position::Decode(want.Encode() + " | 0123456789abcdef 1 2 3 4 5 6", &old));
    CHECK(old.Encode() == want.Encode());
    // A Put without counters saves none.
    ps.Put("a", "file:///r/a", want, 10, 20);
    SessionState none;
    load(ps, &none);
    CHECK(none.segments == 0);
    ps.Put("a", "file:///r/a", want, 10, 20, &c);
    REQUIRE(ps.Flush().ok());
  }
  PositionStore again;
  REQUIRE(again.Open(file).ok());
  SessionState got;
  got.segments = 99;
  load(again, &got);
  CHECK(got.bytes == 0);
  CHECK(got.segments == 0);
  CHECK(got.last_sync_ms == 0);
  CHECK(got.lease_epoch == 0);
}

// A saved position is text (from_chars since the warm-add profile of issue
// 20): every field round-trips at its type's limits, a record written
// before db_mtime_ns existed still reads, and a damaged one is refused
// rather than read as another position.
TEST_CASE("positions: a position's text round-trips at its fields' limits and damaged text is refused",
          "[positions]") {
  Position p;
  p.gen = ~0ull;
  p.txid = ~0ull;
  p.txid_ts_ms = INT64_MIN;
  p.checksum = 0x8000000000000001ull;
  p.frames = ~0ull;
  p.db_mtime_ns = -1;
  p.snapshot_ms = INT64_MAX;
  p.snapshot_txid = 1;
  p.page_size = 65536;
  p.db_pages = UINT32_MAX;
  p.salt1 = UINT32_MAX;
  p.salt2 = 0;
  p.ckpt_seq = 7;
  p.cksum1 = 0x80000000u;
  p.cksum2 = 1;
  p.has_wal = true;
  p.expect_restart = true;
  const std::string text = p.Encode();
  // The saved text, exactly (positions.db rows written by earlier versions
  // read the same way: printf's %016llx, %llu, %lld, %u, %d).
  CHECK(text ==
        "v1 ffffffffffffffff 18446744073709551615 -9223372036854775808 65536 4294967295 9223372036854775809 1 "
        "4294967295 0 7 18446744073709551615 2147483648 1 1 9223372036854775807 1 -1");
  CHECK(Position().Encode() == "v1 - 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0");
  Position got;
  REQUIRE(Position::Decode(text, &got));
  CHECK(got.Encode() == text);
  CHECK(got.gen == p.gen);
  CHECK(got.txid_ts_ms == INT64_MIN);
  CHECK(got.db_mtime_ns == -1);
  CHECK(got.has_wal);
  CHECK(got.expect_restart);

  // Before db_mtime_ns: 16 fields, read as 0.
  Position old = At(5);
  old.db_mtime_ns = 77;
  std::string v16 = old.Encode();
  v16.resize(v16.rfind(' '));
  REQUIRE(Position::Decode(v16, &got));
  CHECK(got.txid == 5);
  CHECK(got.db_mtime_ns == 0);
  // No generation yet.
  REQUIRE(Position::Decode(Position().Encode(), &got));
  CHECK(got.gen == 0);

  const std::string good = At(5).Encode();
  for (const std::string& bad :
       {std::string(), std::string("v1"), std::string("v2") + good.substr(2), good.substr(0, good.size() / 2),
        "v1 xyz" + good.substr(good.find(' ', 3)), "v1 - -5" + good.substr(good.find(' ', good.find(' ', 3) + 1)),
        "v1 - 99999999999999999999" + good.substr(good.find(' ', good.find(' ', 3) + 1))}) {
    INFO(bad);
    CHECK_FALSE(Position::Decode(bad, &got));
  }
}
