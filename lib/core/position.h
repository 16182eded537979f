// Position: everything the replicator remembers about one database between
// syncs (about 100 bytes). It names the last captured transaction, where it
// ends in the WAL, and the database content checksum at that point.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "format/layout.h"

namespace replite {

struct Position {
  // (8-byte fields first, then 4-byte, then the flags: no padding inside,
  // one is kept in every database's slot)
  uint64_t gen = 0;         // generation id (0: nothing captured yet)
  uint64_t txid = 0;        // last captured transaction (durable once uploaded)
  int64_t txid_ts_ms = 0;   // its capture time
  uint64_t checksum = 0;    // content checksum at txid (XOR of page hashes)
  // WAL epoch and offset: frames [0, frames) of the epoch with salts
  // (salt1, salt2) are captured; (cksum1, cksum2) is the checksum chain
  // after them. Meaningful when has_wal.
  uint64_t frames = 0;
  // mtime of the database file when this position was captured: with no
  // WAL, a newer mtime means a WAL came and went (its last connection
  // checkpointed and deleted it) and must be treated as an unknown epoch.
  // Taken only for a position without frames (!has_wal or frames == 0),
  // the only ones it is compared for; one with frames carries an older one.
  int64_t db_mtime_ns = 0;
  int64_t snapshot_ms = 0;   // time of the generation's last snapshot
  uint64_t snapshot_txid = 0;
  uint32_t page_size = 0;
  uint32_t db_pages = 0;    // database size at txid
  uint32_t salt1 = 0, salt2 = 0, ckpt_seq = 0;
  uint32_t cksum1 = 0, cksum2 = 0;
  bool has_wal = false;
  // We checkpointed every captured frame into the database while holding
  // the write lock: the next epoch (salt1 + 1, ckpt_seq + 1) starts from the
  // state at txid and is not a loss of frames.
  bool expect_restart = false;

  bool valid() const { return gen != 0; }
  // Frames of the current WAL epoch not yet checkpointed by us (a quiet
  // checkpoint is due for them once writes stop).
  bool frames_to_checkpoint() const { return frames > 0 && !expect_restart; }
  std::string generation() const { return gen ? Hex16(gen) : std::string(); }
  std::string Encode() const;
  static bool Decode(std::string_view s, Position* out);
};

// What one Replicator counted and holds for a database since its Add: the
// status counters (DatabaseStatus: uploads, checkpoints, generations, the
// last sync), the lease epoch it holds the replica's lease at, and its last
// compaction run. Kept beside the position while the database is active;
// saved after it while parked (PositionStore::Put), so that an idle
// database's slot holds neither. A later Replicator starts from zero.
struct SessionState {
  uint64_t bytes = 0;
  int64_t last_sync_ms = 0;
  uint32_t segments = 0, snapshots = 0, checkpoints = 0, generations = 0;
  uint32_t lease_epoch = 0;  // LeaseKeeper epoch the lease was taken at (0: not held)
  // Wall-clock second of the last compaction run (0: none since Add; then
  // set so that the first run is CompactionStaggerS after the first change).
  uint32_t compacted_s = 0;
};

// An active database's position and session state (DbSlot::pos).
// Assigning a Position (a job's result) leaves the session state as it is:
// uploads counted meanwhile by another thread (a pack stored) are not lost.
struct LivePosition : Position {
  SessionState session;
  LivePosition() = default;
  explicit LivePosition(const Position& p) : Position(p) {}
  LivePosition& operator=(const Position& p) {
    Position::operator=(p);
    return *this;
  }
};

}  // namespace replite
