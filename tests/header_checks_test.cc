// [header] HeaderChecks: the header checks of AddMany's batches, run by
// several runners and the waiting thread at once, each answer in its place.
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <fstream>
#include <random>
#include <thread>

#include "core/header_checks.h"
#include "test_util.h"

using namespace replite;

TEST_CASE("header checks of many batches answer each item in its place whoever checks it", "[header]") {
  test::TempDir dir;
  { test::Writer w(dir / "wal.db"); w.Exec("CREATE TABLE t(x)"); }
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((dir / "journal.db").c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  { std::ofstream(dir / "text.db") << std::string(300, 't'); }
  { std::ofstream(dir / "empty.db"); }
  const std::vector<std::pair<std::string, Code>> kinds = {{"wal.db", Code::kOk},
                                                          {"journal.db", Code::kFailedPrecondition},
                                                          {"text.db", Code::kCorruption},
                                                          {"empty.db", Code::kOk},
                                                          {"missing.db", Code::kNotFound}};
  const int runners = GENERATE(0, 1, 3);
  std::mt19937 rng(7 + runners);
  HeaderChecks checks;
  std::vector<std::thread> threads;
  for (int t = 0; t < runners; t++) threads.emplace_back([&] { checks.Run(); });
  std::vector<std::vector<Code>> want;
  for (int b = 0; b < 40; b++) {
    std::vector<HeaderChecks::Item> items;
    want.emplace_back();
    const int n = int(rng() % 20);  // empty batches too
    for (int i = 0; i < n; i++) {
      const auto& [name, code] = kinds[rng() % kinds.size()];
      const bool enable_wal = rng() % 4 == 0;  // the journal database passes with enable_wal
      items.push_back({dir / name, enable_wal, Status::Internal("not checked")});
      want.back().push_back(enable_wal && code == Code::kFailedPrecondition ? Code::kOk : code);
    }
    REQUIRE(checks.Push(std::move(items)) == size_t(b));
  }
  checks.Finish();
  for (size_t b = 0; b < want.size(); b++) {
    const std::vector<HeaderChecks::Item> got = checks.Take(b);
    REQUIRE(got.size() == want[b].size());
    for (size_t i = 0; i < got.size(); i++) {
      INFO("batch " << b << " item " << i << " " << got[i].path << ": " << got[i].status.ToString());
      CHECK(got[i].status.code() == want[b][i]);
      if (!got[i].status.ok()) CHECK(got[i].status.message().find(got[i].path) != std::string::npos);
    }
  }
  for (auto& t : threads) t.join();  // runners end once every batch is taken
}
