#include "core/snapshot_check.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

namespace replite {

SnapshotCheck::~SnapshotCheck() {
  fd_.Reset();
  if (!path_.empty()) ::unlink(path_.c_str());
}

Status SnapshotCheck::Open(const std::string& spool_dir, uint32_t page_size) {
  path_ = spool_dir + "/snapshot-check" + TempSuffix();
  page_size_ = page_size;
  return OpenFile(path_, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &fd_);
}

Status SnapshotCheck::AddPage(uint32_t pgno, const std::string& page) {
  if (pgno != 1) return PWriteAll(fd_.get(), page.data(), page.size(), uint64_t(pgno - 1) * page_size_, path_);
  // The copy is opened in rollback-journal mode: no -wal or -shm beside it
  // (bytes 18 and 19 are the file format versions; 2 = WAL).
  std::string first = page;
  if (first.size() >= 20) first[18] = first[19] = 1;
  return PWriteAll(fd_.get(), first.data(), first.size(), 0, path_);
}

Status SnapshotCheck::Finish(uint32_t pages) {
  if (::ftruncate(fd_.get(), off_t(uint64_t(pages) * page_size_)) != 0) return ErrnoStatus("truncate " + path_, errno);
  fd_.Reset();
  sqlite3* db = nullptr;
  const std::string uri = "file:" + path_ + "?immutable=1";
  std::string result;
  if (sqlite3_open_v2(uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) != SQLITE_OK) {
    result = db ? sqlite3_errmsg(db) : "cannot open";
  } else {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check(20)", -1, &st, nullptr) == SQLITE_OK) {
      int rc;
      while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!result.empty()) result += "; ";
        result += reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      }
      if (rc != SQLITE_DONE) result += std::string(result.empty() ? "" : "; ") + sqlite3_errmsg(db);
      sqlite3_finalize(st);
    } else {
      result = sqlite3_errmsg(db);
    }
  }
  if (db) sqlite3_close_v2(db);
  if (result == "ok") return Status::OK();
  return Status::Corruption("snapshot pages fail PRAGMA quick_check (" + result.substr(0, 400) +
                            "): the pages were not read from one consistent state; the snapshot is discarded and "
                            "taken again");
}

}  // namespace replite
