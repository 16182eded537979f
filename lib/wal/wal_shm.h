// The wal-index header: the first 136 bytes of a database's -shm file
// (https://www.sqlite.org/walformat.html#the_wal_index_file_format), in the
// byte order of the machine that maps it. Only parsed here: the bytes come
// from the mapping of one of the library's own SQLite connections
// (core/sqlite_files.h: ReadWalIndexInfo), never from a descriptor of ours
// (closing it would drop this process's locks on the -shm file).
//
// Stateless; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace replite {

constexpr size_t kWalIndexHeaderSize = 136;

struct WalIndexInfo {
  // Frames of the WAL known to be valid, as of the first copy of the
  // header (read without the lock that makes it exact: a hint).
  uint32_t mx_frame = 0;
  uint32_t n_backfill = 0;            // frames a checkpoint copied into the database file
  uint32_t n_backfill_attempted = 0;  // frames a checkpoint started to copy (>= n_backfill)
};

// `p` holds the first kWalIndexHeaderSize bytes of the wal-index.
WalIndexInfo ParseWalIndexHeader(const unsigned char* p);

}  // namespace replite
