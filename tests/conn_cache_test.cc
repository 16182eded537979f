// [many] ConnCache, the kept connections of hot databases: with more
// databases syncing than it holds, the ones kept stay kept (plain LRU
// closed each before its next sync, so none was ever reused).
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include "core/conn_cache.h"
#include "test_util.h"

using namespace replite;

namespace {

// One sync of database `id`: take its entry, open it if it is not kept.
bool SyncOnce(ConnCache& cache, const std::string& path, uint32_t id, int64_t now_us) {
  std::unique_ptr<KeptDb> c = cache.Take(id, path);
  const bool reused = c->conn.is_open();
  if (!reused) REQUIRE(c->conn.Open(path, false, 1000).ok());
  cache.Put(id, path, std::move(c), now_us);
  return reused;
}

}  // namespace

TEST_CASE("kept connections: a cache smaller than the hot set keeps what it holds", "[many]") {
  test::TempDir dir;
  std::vector<std::string> paths;
  for (int i = 0; i < 5; i++) {
    paths.push_back(dir / ("db" + std::to_string(i) + ".db"));
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(paths.back().c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x);", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  ConnCache cache(3, 60 * 1000 * 1000);
  // Five databases syncing once a second in turn, room for three: the
  // first three stay kept (3 reuses a round); LRU reused none.
  int reused = 0;
  const int rounds = 10;
  int64_t now = 1000 * 1000;
  for (int r = 0; r < rounds; r++) {
    for (uint32_t i = 0; i < 5; i++) reused += SyncOnce(cache, paths[i], i, now + i * 1000);
    now += 1000 * 1000;
  }
  CHECK(reused == 3 * (rounds - 1));
  CHECK(cache.size() == 3);
  CHECK(cache.refused() == 2u * rounds);

  // An entry out with its job still counts: a newcomer meanwhile is refused.
  {
    std::unique_ptr<KeptDb> out = cache.Take(0, paths[0]);
    REQUIRE(out->conn.is_open());
    CHECK(cache.size() == 2);
    CHECK_FALSE(SyncOnce(cache, paths[3], 3, now));
    CHECK(cache.size() == 2);
    // Dropped by its job (a failed capture): its place is free again.
  }
  CHECK_FALSE(SyncOnce(cache, paths[3], 3, now));
  CHECK(cache.size() == 3);

  // Once the kept ones stop syncing (cold for kWarmUs), newcomers take their places.
  now += ConnCache::kWarmUs + 1;
  CHECK_FALSE(SyncOnce(cache, paths[4], 4, now));
  CHECK(SyncOnce(cache, paths[4], 4, now + 1));
  CHECK(cache.size() == 3);
}
