#include "core/memory_report.h"

#include <malloc.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>

namespace replite {

uint64_t SqliteConnBytes(sqlite3* db) {
  if (db == nullptr) return 0;
  uint64_t total = 0;
  for (int op : {SQLITE_DBSTATUS_CACHE_USED, SQLITE_DBSTATUS_SCHEMA_USED, SQLITE_DBSTATUS_STMT_USED,
                 SQLITE_DBSTATUS_LOOKASIDE_USED}) {
    int cur = 0, hi = 0;
    if (sqlite3_db_status(db, op, &cur, &hi, 0) == SQLITE_OK && cur > 0) {
      // LOOKASIDE_USED counts slots, not bytes: SQLite's default slot is
      // 1,200 bytes (it allocates the whole lookaside buffer at open).
      total += op == SQLITE_DBSTATUS_LOOKASIDE_USED ? 0 : uint64_t(cur);
    }
  }
  return total;
}

void ProcessMemory(std::vector<std::pair<std::string, uint64_t>>* parts) {
  const struct mallinfo2 mi = mallinfo2();
  parts->emplace_back("heap_in_use", uint64_t(mi.uordblks) + uint64_t(mi.hblkhd));
  parts->emplace_back("heap_free", uint64_t(mi.fordblks));
  parts->emplace_back("sqlite_all", uint64_t(sqlite3_memory_used()));
  uint64_t rss = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long long size = 0, resident = 0;
    if (std::fscanf(f, "%llu %llu", &size, &resident) == 2) rss = resident * uint64_t(::sysconf(_SC_PAGESIZE));
    std::fclose(f);
  }
  parts->emplace_back("rss", rss);
}

}  // namespace replite
