// Change capture for one database: reads the WAL frames committed after a
// Position, verifies them (salts + cumulative checksum chain), and encodes
// them as a segment with one restore point per transaction; takes full
// snapshots (streamed to a spool file); runs the library's checkpoints.
//
// The rules it enforces (DESIGN.md §3, §7):
//  - only whole, verified, committed transactions are captured;
//  - a WAL restart we did not cause is detected (salts, checkpoint sequence,
//    shorter file, broken chain); if the database file still equals the
//    captured state (proved by its checksum) the new epoch is adopted,
//    otherwise a new generation starts from a snapshot;
//  - our checkpoints run while our own connection holds the write lock, so
//    no commit can be backfilled without being captured first.
//
// The WAL itself is read by lib/wal (wal_reader.h: header, frames, the
// checksum chain; wal_index.h: page -> frame), through SQLite's own file
// handles (core/sqlite_files.h); this file holds the capture's policy.
//
// Stateless between calls (everything lives in Position); one call at a
// time per database. Opens its files per call and closes them before
// returning; its main SQLite connection may be kept by the caller between
// calls (CaptureRequest::conn), the others are opened per call.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/position.h"
#include "format/segment.h"
#include "replite/status.h"
#include "wal/wal_index.h"  // WalFrameIndex

namespace replite {

class SqliteConn;

struct CaptureRequest {
  std::string db_path;
  bool enable_wal = false;       // switch a non-WAL database to WAL
  int busy_timeout_ms = 5000;
  int zstd_level = 1;
  // Packing: a segment of at most this many bytes of pages goes into a
  // pack and is compressed at pack_zstd_level (0: not packing).
  uint64_t pack_member_max_bytes = 0;
  int pack_zstd_level = -1;
  int64_t now_ms = 0;
  bool want_snapshot = false;    // scheduled snapshot (same generation)
  // PASSIVE checkpoint under the write lock, but only when nothing new was
  // captured (everything in the WAL is durable already): the caller calls
  // again after uploading.
  bool checkpoint = false;
  bool truncate = false;         // then TRUNCATE the WAL (implies checkpoint)
  std::string spool_dir;         // where snapshot (and large segment) files are staged
  // A segment whose pages exceed this is built in a spool file instead of
  // memory. Default: 16 MiB.
  uint64_t memory_limit_bytes = 16ull << 20;
  uint64_t new_generation = 0;   // id to use if a new generation starts
  // If false, a capture that needs a new generation stops before taking
  // its snapshot and sets CaptureResult::needs_new_generation, so that the
  // caller can first find the replica's last txid (the new generation must
  // continue after it, and a saved position may lag the replica after a
  // crash).
  bool allow_new_generation = true;
  // If false, an unknown WAL epoch is not adopted (by the database checksum)
  // but stops the capture with CaptureResult::needs_store_check, or, when a
  // new generation is allowed, starts one: the position may lag the replica
  // (a crash after uploads it did not save), and an adopted epoch would
  // number its commits under txids the store already holds.
  bool may_adopt_epoch = true;
  // A connection the caller keeps between captures of this database (a
  // hot database's): opened here if closed, left open and out of any
  // transaction. Null: a connection is opened and closed by this call.
  SqliteConn* conn = nullptr;
  // The frame index kept with `conn` (may be null).
  WalFrameIndex* frame_index = nullptr;
  // A second kept connection whose open read transaction is the database's
  // read mark between syncs (may be null: no mark is held). While it is
  // held, another connection's checkpoint copies into the database only
  // frames at or before the mark and cannot restart the WAL, so no frame is
  // lost before it is captured. Taken at the start of a capture if not held
  // (the mark is then at or before what the capture reaches); moved only
  // under the write lock (exactly to the captured end), and released for
  // our own checkpoint, then taken again after it.
  SqliteConn* pin = nullptr;
  // A generation's first snapshot of a database up to this size is checked
  // (core/snapshot_check.h) before it is returned; larger ones are not.
  // (Later snapshots are compared with the captured state's checksum.)
  // Default: all.
  uint64_t verify_snapshot_max_bytes = UINT64_MAX;
  // Tests only: sees (and may change) each page a snapshot reads.
  std::function<void(uint32_t pgno, std::string* page)> snapshot_page_hook;
};

struct CaptureResult {
  // Segment with the transactions after the old position (may be empty).
  bool has_segment = false;
  std::string segment;           // the encoded segment, or empty and...
  std::string segment_path;      // ...a spool file holding it (caller uploads, then deletes)
  SegmentHeader segment_header;
  // Snapshot staged in a spool file (caller uploads, then deletes it).
  bool has_snapshot = false;
  std::string snapshot_path;
  SegmentHeader snapshot_header;
  bool new_generation = false;
  bool needs_new_generation = false;  // see CaptureRequest::allow_new_generation
  bool needs_store_check = false;     // see CaptureRequest::may_adopt_epoch
  std::string reason;            // why a new generation or snapshot was taken
  Position pos;                  // position after everything above is durable
  // The snapshot's checksum disagreed with the captured state: nothing is
  // to be shipped; abandon the generation (clear Position::generation, keep
  // txid) so that the next capture starts a new one.
  bool drift = false;
  bool checksum_fallback = false;  // an application checkpoint forced a full scan
  int checkpointed_frames = -1;  // result of our checkpoint (-1: none)
  // Whether an unknown WAL epoch was checked by reading the whole database
  // (its content checksum under the write lock). The values are those of
  // the int this field used to be (0, 1, 2), so comparisons with them hold.
  enum EpochChecksum : int {
    kEpochNotChecked = 0,
    kEpochAdopted = 1,   // it matched: the epoch was adopted
    kEpochMismatch = 2,  // it did not: a new generation follows
  };
  EpochChecksum epoch_checksum = kEpochNotChecked;
  uint64_t wal_frames = 0;       // frames in the WAL epoch after capture
};

// Captures what changed after `pos`. On error nothing is changed (the WAL
// is only read; a failed checkpoint is retried later).
Status CaptureChanges(const CaptureRequest& req, const Position& pos, CaptureResult* out);

// Reads the database content checksum and page count of the current state
// directly (database file + WAL), for tests and verification.
Status ComputeDatabaseChecksum(const std::string& db_path, uint64_t* checksum, uint32_t* pages,
                               uint32_t* page_size);

}  // namespace replite
