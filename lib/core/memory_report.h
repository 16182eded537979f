// What a Replicator's memory is made of, part by part (issue 20): estimates
// from the sizes of its structures, SQLite's own accounting of its
// connections, and the allocator's totals, so a regression shows which part
// grew. Exported as replite_memory_bytes{part=...} and in
// ReplicatorStatus::memory.
//
// The estimates count what the allocator hands out for each piece (chunk
// header and 16-byte rounding included), not what the process's RSS holds
// of it: allocator free space is its own part (heap_free).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "util/memory_size.h"

struct sqlite3;

namespace replite {

// What SQLite says connection `db` holds: page cache, schema, statements.
uint64_t SqliteConnBytes(sqlite3* db);

// The process-wide parts: allocated and free bytes of malloc's arenas
// (heap_in_use, heap_free), SQLite's whole allocation (sqlite_all: also the
// application's, when it shares the library) and the resident set (rss).
void ProcessMemory(std::vector<std::pair<std::string, uint64_t>>* parts);

}  // namespace replite
