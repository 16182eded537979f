// PositionStore (core/position_store.h): Load reads on its own connection,
// so it never waits for a flush, and still sees the newest position: queued,
// in the batch a flush is writing, or saved.
#include <catch2/catch.hpp>

#include <atomic>
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
