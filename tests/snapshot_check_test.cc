// A snapshot is checked before it can be reported durable (issue 19,
// finding 2): pages read from two moments pass every hash, because the
// hashes are computed over the pages as read; SQLite's quick_check on a
// copy of those pages does not.
#include <catch2/catch.hpp>
#include <filesystem>

#include "core/wal_capture.h"
#include "test_util.h"

using namespace replite;

namespace {

size_t FilesIn(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator(); ++it)
    n++;
  return n;
}

}  // namespace

TEST_CASE("a snapshot whose pages are not one consistent state is refused before it is shipped", "[snapshot]") {
  test::TempDir dir;
  const std::string db = dir / "app.db";
  test::Writer w(db, /*autocheckpoint=*/1000);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB)");
  w.Exec("CREATE INDEX t_k ON t(k)");
  for (int i = 0; i < 200; i++)
    w.Exec("INSERT INTO t(k, v) VALUES ('key " + std::to_string(i) + "', randomblob(" +
           std::to_string(500 + (i * 997) % 9000) + "))");

  CaptureRequest req;
  req.db_path = db;
  req.spool_dir = dir / "spool";
  req.now_ms = 1767225600000;
  req.new_generation = 0x0123456789abcdefull;
  const Position first;  // no position: a new generation from a snapshot

  SECTION("sound pages pass, and the scratch copy is removed") {
    CaptureResult out;
    Status s = CaptureChanges(req, first, &out);
    INFO(s.ToString());
    REQUIRE(s.ok());
    CHECK(out.has_snapshot);
    CHECK(out.new_generation);
    CHECK(FilesIn(dir / "spool") == 1);  // the snapshot itself
    ::unlink(out.snapshot_path.c_str());
  }
  SECTION("pages of two moments are refused, and nothing is left in the spool") {
    // What a read that lost its protection sees: some pages from before a
    // change (here: the table's pages from an older state of the b-tree,
    // simulated by swapping two of its pages) and the rest from after.
    std::string saved;
    req.snapshot_page_hook = [&](uint32_t pgno, std::string* page) {
      if (pgno == 3) saved = *page;
      if (pgno == 7 && !saved.empty()) *page = saved;
    };
    CaptureResult out;
    Status s = CaptureChanges(req, first, &out);
    INFO(s.ToString());
    CHECK(s.code() == Code::kCorruption);
    CHECK(s.message().find("quick_check") != std::string::npos);
    CHECK(s.message().find(db) != std::string::npos);
    CHECK(!out.has_snapshot);
    CHECK(FilesIn(dir / "spool") == 0);
  }
  SECTION("above the size limit a snapshot is not checked") {
    req.verify_snapshot_max_bytes = 0;
    std::string saved;
    req.snapshot_page_hook = [&](uint32_t pgno, std::string* page) {
      if (pgno == 3) saved = *page;
      if (pgno == 7 && !saved.empty()) *page = saved;
    };
    CaptureResult out;
    REQUIRE(CaptureChanges(req, first, &out).ok());
    CHECK(out.has_snapshot);
    ::unlink(out.snapshot_path.c_str());
  }
}
