#include "core/wal_capture.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include "core/block_pipeline.h"
#include "core/sqlite_conn.h"
#include "core/sqlite_files.h"
#include "core/snapshot_check.h"
#include "core/spool_sink.h"
#include "util/coding.h"
#include "util/file_util.h"
#include "util/hash.h"
#include "wal/wal_format.h"
#include "wal/wal_index.h"
#include "wal/wal_reader.h"
#include "wal/wal_shm.h"

namespace replite {
namespace {

// ---- files -----------------------------------------------------------------
// Read only through the handles of our own SQLite connection (see
// core/sqlite_files.h: a raw descriptor's close would drop this process's
// locks on the file); the WAL through lib/wal's reader over such a handle.

struct WalFile {
  SqliteFileRef f;
  WalReader r;  // reads `f`, so a WalFile is never copied
  WalFile() = default;
  WalFile(const WalFile&) = delete;
  WalFile& operator=(const WalFile&) = delete;
  // Exists and has a valid header (else SQLite treats the WAL as empty).
  bool valid() const { return r.has_header(); }
  const WalHeader& hdr() const { return r.header(); }
};

// `conn` must be inside a transaction (SQLite opens the WAL at its first
// read in WAL mode).
Status OpenWal(SqliteConn& conn, const std::string& db_path, WalFile* w) {
  w->f = SqliteFileRef();
  w->r = WalReader();
  Status s = SqliteFileRef::Wal(conn.raw(), db_path, &w->f);
  if (!s.ok()) return s;
  return w->r.Open(&w->f);
}

struct DbFile {
  SqliteFileRef f;
  uint32_t page_size = 0;
  uint32_t header_pages = 0;  // only with_pages (else 0)
  int64_t mtime_ns = 0;  // once have_mtime (DbMtime)
  bool have_mtime = false;
};

// The database file's mtime, by path (stat opens no descriptor), taken on
// first use inside the capture's transaction, and only where a position
// needs it: the no-WAL check (Classify) and a position without frames of
// a WAL epoch. A position with frames carries its predecessor's: nothing
// reads it (a WAL gone from under it is an unknown epoch whatever the
// mtime). A hot database's capture skips this path lookup (~2% of a
// packed process's CPU at 1,000 commits/s).
Status DbMtime(const std::string& path, DbFile* d) {
  if (d->have_mtime) return Status::OK();
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat " + path, errno);
  d->mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  d->have_mtime = true;
  return Status::OK();
}

// with_pages: also the database's size in pages (the header's count, else
// the file's size), which only the write-lock paths use (snapshots, epoch
// checks); an incremental capture under the read lock skips its fstat.
Status OpenDb(SqliteConn& conn, const std::string& path, DbFile* d, bool with_pages) {
  *d = DbFile();
  Status s = SqliteFileRef::Database(conn.raw(), path, &d->f);
  if (!s.ok()) return s;
  unsigned char h[100];
  size_t got = 0;
  s = d->f.Read(h, sizeof h, 0, &got);
  if (!s.ok()) return s;
  if (got < 100 || std::memcmp(h, "SQLite format 3", 16) != 0)
    return Status::Corruption("database " + path + " is not a SQLite database (bad header)");
  uint32_t ps = GetBE16(h + 16);
  d->page_size = ps == 1 ? 65536 : ps;
  if (d->page_size < 512 || (d->page_size & (d->page_size - 1)) != 0)
    return Status::Corruption("database " + path + " has an invalid page size");
  if (!with_pages) return Status::OK();
  uint64_t size = 0;
  s = d->f.Size(&size);
  if (!s.ok()) return s;
  uint32_t in_header = GetBE32(h + 28);
  bool valid_for = GetBE32(h + 24) == GetBE32(h + 92);
  d->header_pages = (in_header != 0 && valid_for) ? in_header : static_cast<uint32_t>(size / d->page_size);
  return Status::OK();
}

// nBackfillAttempted of the wal-index, through `db`'s own mapping; false if
// it cannot be read.
bool BackfillAttempted(sqlite3* db, uint32_t* attempted) {
  WalIndexInfo info;
  if (!ReadWalIndexInfo(db, &info)) return false;
  *attempted = info.n_backfill_attempted;
  return true;
}

// ---- page versions -------------------------------------------------------------

// The content of each page at a point in the WAL: the latest frame at or
// before it, else the database file, else zeros (pages past the database
// size are zeros by definition; see FORMAT.md "content checksum").
class PageSource {
 public:
  PageSource(const WalReader* wal, DbFile* db, uint32_t page_size, uint32_t db_pages)
      : wal_(wal), db_(db), ps_(page_size), pages_(db_pages) {}

  // Indexes frames [from, to) by reading their headers.
  // Also appends each frame's page number to `pgnos` if given.
  Status IndexFrames(uint64_t from, uint64_t to, std::vector<uint32_t>* pgnos = nullptr) {
    return idx_.AddFrames(*wal_, from, to, pgnos);
  }
  void SetFrame(uint32_t pgno, uint64_t frame) { idx_.Set(pgno, frame); }
  // Frames [0, n) hold pages pgnos[0, n) (a hot database's kept frame
  // index; frames set or indexed otherwise must come after them). Looked
  // up when a page's old version is read, by a backward scan, and indexed
  // once only after kPrefixScans lookups: a capture of a few pages no
  // longer hashes every frame of the epoch (up to ~1,000 node inserts per
  // commit under SQLite's default autocheckpoint).
  void SetPrefix(const uint32_t* pgnos, uint64_t n) {
    prefix_ = pgnos;
    prefix_n_ = n;
  }
  // `frame` (header and page, as read and checked under this epoch's salts)
  // is in memory: a page whose version is there is not read again.
  void SetKnownFrame(uint64_t frame, const std::string* bytes) {
    known_ = frame;
    known_bytes_ = bytes;
  }
  void SetPages(uint32_t n) { pages_ = n; }
  uint32_t pages() const { return pages_; }
  bool read_db_file() const { return read_db_file_; }

  Status Read(uint32_t pgno, std::string* out) {
    out->resize(ps_);
    if (pgno > pages_) {
      std::memset(out->data(), 0, ps_);
      return Status::OK();
    }
    if (uint64_t frame = 0; FindFrame(pgno, &frame)) {
      if (known_bytes_ != nullptr && frame == known_ && known_bytes_->size() == kWalFrameHeaderSize + ps_ &&
          ParseWalFrameHeader(reinterpret_cast<const unsigned char*>(known_bytes_->data())).pgno == pgno) {
        std::memcpy(out->data(), known_bytes_->data() + kWalFrameHeaderSize, ps_);
        return Status::OK();
      }
      return wal_->ReadPage(frame, pgno, out->data());
    }
    read_db_file_ = true;
    size_t got = 0;
    Status s = db_->f.Read(out->data(), ps_, uint64_t(pgno - 1) * ps_, &got);
    if (!s.ok()) return s;
    if (got < ps_) std::memset(out->data() + got, 0, ps_ - got);
    return Status::OK();
  }

  // XOR of page hashes over pages 1..n.
  Status FullChecksum(uint64_t* out) {
    uint64_t c = 0;
    std::string page;
    for (uint32_t p = 1; p <= pages_; p++) {
      Status s = Read(p, &page);
      if (!s.ok()) return s;
      c ^= PageHash(p, page.data(), ps_);
    }
    *out = c;
    return Status::OK();
  }

 private:
  static constexpr int kPrefixScans = 32;

  bool FindFrame(uint32_t pgno, uint64_t* frame) {
    if (idx_.Find(pgno, frame)) return true;
    if (prefix_n_ == 0) return false;
    if (++prefix_scans_ > kPrefixScans) {
      if (prefix_idx_.size() == 0) prefix_idx_.AddKnown(0, prefix_, prefix_n_);
      return prefix_idx_.Find(pgno, frame);
    }
    for (uint64_t f = prefix_n_; f-- > 0;) {
      if (prefix_[f] == pgno) {
        *frame = f;
        return true;
      }
    }
    return false;
  }

  const WalReader* wal_;
  DbFile* db_;
  uint32_t ps_;
  uint32_t pages_;
  WalPageIndex idx_;           // frames after the prefix
  const uint32_t* prefix_ = nullptr;
  uint64_t prefix_n_ = 0;
  int prefix_scans_ = 0;
  WalPageIndex prefix_idx_;    // the prefix, once scanned kPrefixScans times
  uint64_t known_ = 0;
  const std::string* known_bytes_ = nullptr;
  bool read_db_file_ = false;
};

// ---- the capture itself ------------------------------------------------------------

enum class Epoch { kSame, kExpectedRestart, kNoWal, kUnknown };

// The lock an attempt holds on the database while it reads the WAL.
enum class Lock { kRead, kWrite };

// What an attempt ended with, when it returned OK.
enum class Outcome {
  kDone,
  kNeedWriteLock,  // what it found can only be handled under the write lock: start over with it
};

// Which snapshot WriteSnapshot takes.
enum class SnapshotKind {
  kNewGeneration,   // a generation's first: checked by SQLite (core/snapshot_check.h)
  kSameGeneration,  // a scheduled one: compared with the captured state's checksum
};

class Capture {
 public:
  Capture(const CaptureRequest& req, const Position& pos, CaptureResult* out)
      : req_(req), pos_(pos), out_(out), conn_(req.conn ? *req.conn : own_conn_) {}

  Status Run() {
    // First try without the write lock; some situations (an application
    // checkpoint raced the position, an unknown WAL epoch, snapshots and
    // checkpoints) need it and restart under it.
    Lock lock = req_.want_snapshot || req_.checkpoint || req_.truncate || !pos_.valid() ? Lock::kWrite : Lock::kRead;
    for (int attempt = 0; attempt < 3; attempt++) {
      // A retried attempt starts over: what the failed one staged goes.
      if (!out_->snapshot_path.empty()) ::unlink(out_->snapshot_path.c_str());
      if (!out_->segment_path.empty()) ::unlink(out_->segment_path.c_str());
      *out_ = CaptureResult();
      out_->pos = pos_;
      full_checkpoint_ = false;
      Outcome outcome = Outcome::kDone;
      Status s = Attempt(lock, &outcome);
      Cleanup();
      if (s.ok() && outcome == Outcome::kNeedWriteLock && lock == Lock::kRead) {
        lock = Lock::kWrite;
        continue;
      }
      // Transient: the WAL moved under the read, or a lock was busy (every
      // kUnavailable here is one of those). A corruption report from a
      // read is retried once on a fresh connection before it is believed.
      if (s.code() == Code::kUnavailable && attempt < 2) continue;
      if (s.code() == Code::kCorruption && !retried_corruption_ && attempt < 2) {
        retried_corruption_ = true;
        conn_.Close();
        continue;
      }
      return s;
    }
    return Status::Unavailable("database " + req_.db_path + ": WAL kept changing during capture (will retry)");
  }

 private:
  void Cleanup() {
    snap_conn_.Close();
    ckpt_conn_.Close();
    if (&conn_ == &own_conn_) conn_.Close();
    else conn_.End();  // the caller keeps it, out of any transaction
  }

  Status Attempt(Lock lock, Outcome* outcome) {
    Status s;
    pos_frame_.clear();  // an earlier attempt's (the WAL may have restarted since)
    if (!conn_.is_open()) {
      s = conn_.Open(req_.db_path, req_.enable_wal, req_.busy_timeout_ms);
      if (!s.ok()) return s;
      int one = 1;  // never let our connection's close delete the WAL
      sqlite3_file_control(conn_.raw(), "main", SQLITE_FCNTL_PERSIST_WAL, &one);
    }
    Pin();  // before our transaction: its mark is at or before what we capture
    s = lock == Lock::kWrite ? conn_.BeginWrite() : conn_.BeginRead();
    if (!s.ok()) return s;
    s = OpenDb(conn_, req_.db_path, &db_, lock == Lock::kWrite);
    if (!s.ok()) return s;
    s = OpenWal(conn_, req_.db_path, &wal_);
    if (!s.ok()) return s;
    const uint32_t ps = wal_.valid() ? wal_.hdr().page_size : db_.page_size;
    if (pos_.valid() && pos_.page_size != ps) {
      if (lock == Lock::kRead) {
        *outcome = Outcome::kNeedWriteLock;
        return Status::OK();
      }
      return NewGeneration("page size changed from " + std::to_string(pos_.page_size) + " to " + std::to_string(ps));
    }
    if (!pos_.valid())
      return NewGeneration(pos_.txid == 0 ? "first sync of this database (no saved position)"
                                          : "starting over after the previous generation was abandoned");

    if (!wal_.valid()) {
      s = DbMtime(req_.db_path, &db_);
      if (!s.ok()) return s;
    }
    uint64_t start = 0;
    WalChain chain;
    Epoch e = Classify(&start, &chain);
    if (e == Epoch::kUnknown) {
      if (lock == Lock::kRead) {
        *outcome = Outcome::kNeedWriteLock;
        return Status::OK();
      }
      if (!req_.may_adopt_epoch) {
        if (!req_.allow_new_generation) {
          out_->needs_store_check = true;
          return Status::OK();
        }
        return NewGeneration(
            "the WAL was restarted or truncated by another connection, and the saved position lags the replica "
            "(a crash after uploads it had not saved), so the new epoch cannot continue it");
      }
      bool adopted = false;
      s = TryAdoptEpoch(&adopted);
      if (!s.ok()) return s;
      if (!adopted)
        return NewGeneration(
            "the WAL was restarted or truncated by another connection before all frames were captured "
            "(salt/checkpoint sequence changed and the database no longer matches the captured state)");
      e = wal_.valid() ? Epoch::kExpectedRestart : Epoch::kNoWal;
      start = 0;
      if (wal_.valid()) chain = wal_.r.header_chain();
    }

    Position np = pos_;
    np.expect_restart = false;
    if (e == Epoch::kNoWal) {
      np.has_wal = false;
      np.frames = 0;
    } else {
      np.has_wal = true;
      np.salt1 = wal_.hdr().salt1;
      np.salt2 = wal_.hdr().salt2;
      np.ckpt_seq = wal_.hdr().ckpt_seq;
      if (e == Epoch::kExpectedRestart) {
        np.frames = 0;
        np.cksum1 = chain.s1;
        np.cksum2 = chain.s2;
      }
    }
    if (e != Epoch::kNoWal) {
      WalScan scan;
      // The wal-index's mxFrame (read through our connection's mapping) sizes
      // the scan's reads; the result does not depend on it.
      WalIndexInfo wi;
      const uint64_t end_hint = ReadWalIndexInfo(conn_.raw(), &wi) ? wi.mx_frame : 0;
      s = wal_.r.ScanCommitted(start, chain, &scan, end_hint);
      if (!s.ok()) return s;
      if (!scan.txs.empty()) {
        s = EncodeSegment(start, scan, lock, &np, outcome);
        if (!s.ok() || *outcome == Outcome::kNeedWriteLock) return s;
        RememberFrames(start, scan);
      }
      np.frames = scan.end;
      np.cksum1 = scan.chain.s1;
      np.cksum2 = scan.chain.s2;
    } else if (pos_.expect_restart) {
      np.expect_restart = true;  // still waiting for the restart we caused
    }
    if (!np.has_wal || np.frames == 0) {
      s = DbMtime(req_.db_path, &db_);
      if (!s.ok()) return s;
      np.db_mtime_ns = db_.mtime_ns;
    }
    out_->wal_frames = np.frames;
    out_->pos = np;

    if (req_.want_snapshot) {
      s = PinForSnapshot();
      if (!s.ok()) return s;
    }
    // Checkpoint only what is already durable: if this attempt captured
    // new transactions (not yet uploaded), the checkpoint waits for the
    // next call, so a failed upload can always be retried from the WAL.
    const bool checkpoint = lock == Lock::kWrite && (req_.checkpoint || req_.truncate) && np.has_wal && np.frames > 0 &&
                            !out_->has_segment && !req_.want_snapshot;
    if (checkpoint) {
      Unpin();  // our checkpoint copies every captured frame, and may restart the WAL
      s = CheckpointUnderLock();
      if (!s.ok()) return s;
    } else if (lock == Lock::kWrite) {
      RePin();  // under the write lock the WAL's end is what we captured
    }
    conn_.End();
    if (req_.want_snapshot) {
      s = WriteSnapshot(out_->pos.txid, SnapshotKind::kSameGeneration);
      if (!s.ok()) return s;
    }
    if (full_checkpoint_ && req_.truncate) {
      // Everything is in the database file; shrink the WAL file. A commit
      // that slips in between our unlock and the truncate would be lost to
      // capture, so after a truncate the next epoch is verified (by the
      // database checksum) instead of trusted.
      ckpt_conn_.SetBusyTimeout(50);
      int l = 0, c = 0;
      (void)ckpt_conn_.Checkpoint(SQLITE_CHECKPOINT_TRUNCATE, &l, &c);
      ckpt_conn_.SetBusyTimeout(req_.busy_timeout_ms);
    } else if (full_checkpoint_) {
      out_->pos.expect_restart = RestartIsCertain();
    }
    if (checkpoint) Pin();  // commits made since our unlock may precede it (then a later capture falls back)
    return Status::OK();
  }

  // The read mark (CaptureRequest::pin). Failing to take it is not an error:
  // the capture stays exact (a lost frame is detected), it is only less
  // protected until the next attempt.
  void Pin() {
    SqliteConn* p = req_.pin;
    if (p == nullptr || p->in_txn()) return;
    if (!p->is_open()) {
      if (!p->Open(req_.db_path, false, 0).ok()) return;
      int one = 1;
      sqlite3_file_control(p->raw(), "main", SQLITE_FCNTL_PERSIST_WAL, &one);
    }
    (void)p->BeginRead();
  }
  void Unpin() {
    if (req_.pin) req_.pin->End();
  }
  void RePin() {
    Unpin();
    Pin();
  }

  // After our checkpoint copied every captured frame into the database, is
  // the next epoch certain to start from that state? Only if no reader still
  // holds a snapshot inside the WAL: one that began before the checkpoint
  // makes SQLite append the next commits to this epoch instead of restarting,
  // and another connection's checkpoint may then copy those commits into the
  // database and restart the WAL before we capture them. A RESTART-mode
  // checkpoint that does not wait answers it: it succeeds only when it gets
  // the write lock and no reader uses the WAL, after which every reader reads
  // the database file and the next writer restarts the WAL. And the WAL must
  // still be this epoch with nothing appended (a later epoch would be one we
  // cannot vouch for). When unsure the next epoch is verified instead (the
  // database checksum under the write lock, or a new generation).
  bool RestartIsCertain() {
    ckpt_conn_.SetBusyTimeout(0);
    int l = -1, c = -1;
    const bool ok = ckpt_conn_.Checkpoint(SQLITE_CHECKPOINT_RESTART, &l, &c).ok();
    ckpt_conn_.SetBusyTimeout(req_.busy_timeout_ms);
    if (!ok || l < 0 || l != c || uint64_t(l) != out_->pos.frames) return false;
    WalHeader h;
    if (!wal_.r.ReadHeader(&h).ok()) return false;
    const Position& p = out_->pos;
    return h.salt1 == p.salt1 && h.salt2 == p.salt2 && h.ckpt_seq == p.ckpt_seq;
  }

  // Does the WAL's frame before our position still hold our epoch's salts
  // and the chain checksum we saved after it? (An I/O error counts as no:
  // the epoch is then verified under the write lock.) The whole frame is
  // read and, when it matches, kept in pos_frame_: its page is often the
  // old version the capture reads first (a table's last leaf, rewritten by
  // every commit that appends to it).
  bool PositionFrameMatches() {
    const size_t fsz = kWalFrameHeaderSize + wal_.hdr().page_size;
    pos_frame_.resize(fsz);
    size_t got = 0;
    if (!wal_.f.Read(pos_frame_.data(), fsz, WalFrameOffset(wal_.hdr().page_size, pos_.frames - 1), &got).ok() ||
        got < kWalFrameHeaderSize) {
      pos_frame_.clear();
      return false;
    }
    const WalFrameHeader h = ParseWalFrameHeader(reinterpret_cast<const unsigned char*>(pos_frame_.data()));
    const bool match = h.commit_size != 0 && h.salt1 == pos_.salt1 && h.salt2 == pos_.salt2 &&
                       h.cksum1 == pos_.cksum1 && h.cksum2 == pos_.cksum2;
    if (!match || got < fsz) pos_frame_.clear();
    return match;
  }

  Epoch Classify(uint64_t* start, WalChain* chain) {
    if (!wal_.valid()) {
      // No WAL (or an empty one): nothing to capture. It is the same state
      // only if we were not inside an epoch with frames and the database
      // file was not written since (a WAL that came and went).
      if ((!pos_.has_wal || pos_.frames == 0) && db_.mtime_ns == pos_.db_mtime_ns) return Epoch::kNoWal;
      return Epoch::kUnknown;
    }
    const WalHeader& h = wal_.hdr();
    if (pos_.has_wal && h.salt1 == pos_.salt1 && h.salt2 == pos_.salt2 && h.ckpt_seq == pos_.ckpt_seq) {
      if (WalFrameOffset(h.page_size, pos_.frames) > wal_.r.file_size()) return Epoch::kUnknown;  // shorter file
      // Same salts do not prove the same frames: a tail rewritten under
      // them (power loss with synchronous=NORMAL, a volume snapshot rolled
      // back, db and WAL copied back) breaks the chain at our position, and
      // a scan from there would find "no new commits" forever. The frame
      // before the position must still carry the chain we saved.
      if (pos_.frames > 0 && !PositionFrameMatches()) return Epoch::kUnknown;
      *start = pos_.frames;
      *chain = pos_.frames == 0 ? wal_.r.header_chain() : WalChain{pos_.cksum1, pos_.cksum2};
      return Epoch::kSame;
    }
    // One restart since our epoch: SQLite's restart writes salt1 + 1 and,
    // as the checkpoint sequence, the restarting connection's own count of
    // restarts (not the old header's + 1: another connection's restart
    // often keeps the number). A sequence of 0 marks a WAL created afresh,
    // whose salts are random.
    if (pos_.has_wal && pos_.expect_restart && h.salt1 == pos_.salt1 + 1 && h.ckpt_seq != 0) {
      *start = 0;
      *chain = wal_.r.header_chain();
      return Epoch::kExpectedRestart;
    }
    return Epoch::kUnknown;
  }

  // Under the write lock: the new epoch starts from the database file. If no
  // checkpoint has touched the file in this epoch and the file's content
  // checksum equals the captured state, nothing was lost.
  Status TryAdoptEpoch(bool* adopted) {
    *adopted = false;
    uint32_t attempted = 0;
    if (wal_.valid() && (!BackfillAttempted(conn_.raw(), &attempted) || attempted != 0)) return Status::OK();
    PageSource src(&wal_.r, &db_, pos_.page_size, db_.header_pages);
    if (db_.header_pages != pos_.db_pages) return Status::OK();
    uint64_t c = 0;
    Status s = src.FullChecksum(&c);
    if (!s.ok()) return s;
    if (wal_.valid() && (!BackfillAttempted(conn_.raw(), &attempted) || attempted != 0)) return Status::OK();
    *adopted = c == pos_.checksum;
    out_->epoch_checksum = *adopted ? CaptureResult::kEpochAdopted : CaptureResult::kEpochMismatch;
    return Status::OK();
  }

  // The zstd level of a segment of `page_bytes` of pages: a pack's
  // members (compressed one by one, rewritten when unpacked) take the
  // pack's faster level.
  int SegmentLevel(uint64_t page_bytes) const {
    return req_.pack_member_max_bytes != 0 && page_bytes <= req_.pack_member_max_bytes ? req_.pack_zstd_level
                                                                                   : req_.zstd_level;
  }

  Status EncodeSegment(uint64_t start, const WalScan& scan, Lock lock, Position* np, Outcome* outcome) {
    const uint32_t ps = wal_.hdr().page_size;
    PageSource src(&wal_.r, &db_, ps, pos_.db_pages);
    Status s = IndexPrefix(&src, start);
    if (!s.ok()) return s;
    if (!pos_frame_.empty() && start == pos_.frames) src.SetKnownFrame(start - 1, &pos_frame_);
    SegmentHeader h;
    h.kind = ObjectKind::kSegment;
    h.page_size = ps;
    h.generation = pos_.generation();
    SegmentOut seg;
    s = seg.Open(uint64_t(scan.pgnos.size()) * ps, req_.memory_limit_bytes, req_.spool_dir);
    if (!s.ok()) return s;
    SegmentBuilder builder(seg.sink(), h, SegmentLevel(uint64_t(scan.pgnos.size()) * ps));
    s = builder.Start();
    if (!s.ok()) return s;
    // Declared after the builder: stopped before it goes.
    BlockPipeline pipe(&builder, uint64_t(scan.pgnos.size()) * ps > BlockPipeline::kThreadedBytes);

    uint64_t c = pos_.checksum;
    uint64_t txid = pos_.txid;
    const int64_t ts = req_.now_ms;
    // New page versions come in frame order through one sequential cursor;
    // old versions (for the checksum) from wherever they are.
    WalFrameCursor cursor(&wal_.r, scan.end);
    cursor.UseScan(scan);  // a small capture's frames were read whole by the scan
    std::string oldp;
    std::string zero;  // a zero page, made when a transaction grows the database
    std::vector<uint64_t> frames;
    std::vector<uint32_t> grown;  // pages past the old size the transaction wrote
    std::vector<uint32_t> blk_pgnos;
    std::string blk_pages;
    for (size_t t = 0; t < scan.txs.size(); t++) {
      const WalTx& tx = scan.txs[t];
      txid++;
      TxFinalFrames(scan, tx, &frames);
      const uint32_t n_before = src.pages(), n_after = tx.db_pages;
      // Pages cut off by a shrink leave the checksum.
      for (uint32_t p = n_after + 1; p <= n_before; p++) {
        s = src.Read(p, &oldp);
        if (!s.ok()) return s;
        c ^= PageHash(p, oldp.data(), ps);
      }
      blk_pgnos.clear();
      blk_pages.clear();
      grown.clear();
      for (uint64_t frame : frames) {
        const uint32_t pgno = scan.pgnos[frame - scan.start];
        if (pgno > n_after) continue;  // written, then cut off by the same commit
        if (pgno <= n_before) {
          s = src.Read(pgno, &oldp);
          if (!s.ok()) return s;
          // A page past the old size was not part of the old checksum.
          c ^= PageHash(pgno, oldp.data(), ps);
        } else {
          grown.push_back(pgno);
        }
        const char* newp = nullptr;
        s = cursor.Page(frame, pgno, &newp);
        if (!s.ok()) return s;
        c ^= PageHash(pgno, newp, ps);
        blk_pgnos.push_back(pgno);
        blk_pages.append(newp, ps);
        if (blk_pgnos.size() == kMaxPagesPerBlock) {
          s = pipe.Add(txid, ts, n_after, 0, 0, &blk_pgnos, &blk_pages);
          if (!s.ok()) return s;
        }
      }
      // Pages added by growth but not written: zeros (see FORMAT.md).
      if (n_after > n_before) {
        if (zero.empty()) zero.assign(ps, '\0');
        std::sort(grown.begin(), grown.end());
        size_t g = 0;
        for (uint32_t p = n_before + 1; p <= n_after; p++) {
          if (g < grown.size() && grown[g] == p) {
            g++;
            continue;
          }
          c ^= PageHash(p, zero.data(), ps);
        }
      }
      for (uint64_t frame : frames) src.SetFrame(scan.pgnos[frame - scan.start], frame);
      src.SetPages(n_after);
      // The checksum goes into the transaction's last block.
      s = pipe.Add(txid, ts, n_after, c, kBlockTxEnd, &blk_pgnos, &blk_pages);
      if (!s.ok()) return s;
    }
    s = pipe.Drain();
    if (!s.ok()) return s;

    // Did an application checkpoint copy frames past our position into the
    // database file while we read old page versions from it?
    bool fallback = false;
    if (src.read_db_file()) {
      uint32_t attempted = 0;
      if (!BackfillAttempted(conn_.raw(), &attempted) || attempted > start) fallback = true;
    }
    if (fallback && lock == Lock::kRead) {
      *outcome = Outcome::kNeedWriteLock;
      return Status::OK();
    }
    if (fallback) {
      // Under the write lock the end of the WAL is fixed: the state after
      // the last transaction is read whole. Checksums of the transactions
      // before it cannot be known (their old pages were overwritten) and
      // are recorded as absent.
      uint64_t full = 0;
      s = src.FullChecksum(&full);
      if (!s.ok()) return s;
      out_->checksum_fallback = true;
      c = full;
      return Reencode(scan, full, np);
    }
    return FinishSegment(&builder, &seg, ps, txid, ts, c, src.pages(), np);
  }

  // Indexes the frames [0, start) of the WAL: from the caller's frame index
  // when it covers them (a hot database), else by reading their headers
  // (and filling the caller's index for next time).
  Status IndexPrefix(PageSource* src, uint64_t start) {
    WalFrameIndex* fi = req_.frame_index;
    if (fi && fi->Covers(wal_.hdr(), start)) {
      src->SetPrefix(fi->pgnos.data(), start);
      return Status::OK();
    }
    std::vector<uint32_t>* collect = nullptr;
    if (fi) {
      fi->Reset();
      if (start <= WalFrameIndex::kMaxFrames) collect = &fi->pgnos;
    }
    Status s = src->IndexFrames(0, start, collect);
    if (fi) {
      if (s.ok() && collect) {
        fi->salt1 = wal_.hdr().salt1;
        fi->salt2 = wal_.hdr().salt2;
      } else {
        fi->Reset();
      }
    }
    return s;
  }

  // After a capture of frames [start, scan.end): extends the caller's frame
  // index if it covers [0, start) of this epoch.
  void RememberFrames(uint64_t start, const WalScan& scan) {
    WalFrameIndex* fi = req_.frame_index;
    if (!fi) return;
    if (!fi->Covers(wal_.hdr(), start) || scan.end > WalFrameIndex::kMaxFrames) {
      fi->Reset();
      return;
    }
    fi->pgnos.resize(start);
    fi->pgnos.insert(fi->pgnos.end(), scan.pgnos.begin(), scan.pgnos.end());
  }

  // Writes the segment's index and header and moves the position past it.
  Status FinishSegment(SegmentBuilder* builder, SegmentOut* seg, uint32_t ps, uint64_t last_txid, int64_t ts,
                       uint64_t checksum_after, uint32_t pages_after, Position* np) {
    SegmentHeader fh;
    fh.first_txid = pos_.txid + 1;
    fh.last_txid = last_txid;
    fh.first_ts_ms = fh.last_ts_ms = ts;
    fh.checksum_before = pos_.checksum;
    fh.checksum_after = checksum_after;
    fh.pages_before = pos_.db_pages;
    fh.pages_after = pages_after;
    Status s = builder->Finish(fh);
    if (!s.ok()) return s;
    out_->has_segment = true;
    seg->MoveTo(&out_->segment, &out_->segment_path);
    fh.kind = ObjectKind::kSegment;
    fh.page_size = ps;
    fh.generation = pos_.generation();
    out_->segment_header = fh;
    np->txid = last_txid;
    np->txid_ts_ms = ts;
    np->checksum = checksum_after;
    np->db_pages = pages_after;
    return Status::OK();
  }

  // Encodes the same transactions again with checksums marked absent except
  // the last one, which is `final_checksum`.
  Status Reencode(const WalScan& scan, uint64_t final_checksum, Position* np) {
    const uint32_t ps = wal_.hdr().page_size;
    SegmentHeader h;
    h.kind = ObjectKind::kSegment;
    h.page_size = ps;
    h.generation = pos_.generation();
    SegmentOut seg;
    Status s = seg.Open(uint64_t(scan.pgnos.size()) * ps, req_.memory_limit_bytes, req_.spool_dir);
    if (!s.ok()) return s;
    SegmentBuilder builder(seg.sink(), h, SegmentLevel(uint64_t(scan.pgnos.size()) * ps));
    s = builder.Start();
    if (!s.ok()) return s;
    BlockPipeline pipe(&builder, uint64_t(scan.pgnos.size()) * ps > BlockPipeline::kThreadedBytes);
    uint64_t txid = pos_.txid;
    WalFrameCursor cursor(&wal_.r, scan.end);
    cursor.UseScan(scan);  // a small capture's frames were read whole by the scan
    std::vector<uint64_t> frames;
    std::vector<uint32_t> pg;
    std::string data;
    for (size_t t = 0; t < scan.txs.size(); t++) {
      const WalTx& tx = scan.txs[t];
      txid++;
      TxFinalFrames(scan, tx, &frames);
      pg.clear();
      data.clear();
      const bool last = t + 1 == scan.txs.size();
      for (uint64_t frame : frames) {
        const uint32_t pgno = scan.pgnos[frame - scan.start];
        if (pgno > tx.db_pages) continue;
        const char* newp = nullptr;
        s = cursor.Page(frame, pgno, &newp);
        if (!s.ok()) return s;
        pg.push_back(pgno);
        data.append(newp, ps);
        if (pg.size() == kMaxPagesPerBlock) {
          s = pipe.Add(txid, req_.now_ms, tx.db_pages, 0, 0, &pg, &data);
          if (!s.ok()) return s;
        }
      }
      s = pipe.Add(txid, req_.now_ms, tx.db_pages, last ? final_checksum : 0,
                   kBlockTxEnd | (last ? 0 : kBlockNoChecksum), &pg, &data);
      if (!s.ok()) return s;
    }
    s = pipe.Drain();
    if (!s.ok()) return s;
    return FinishSegment(&builder, &seg, ps, txid, req_.now_ms, final_checksum, scan.txs.back().db_pages, np);
  }

  // Under the write lock: a second connection starts a read transaction,
  // which therefore sees exactly the captured end of the WAL and keeps any
  // checkpoint from copying past it; the write lock can then be released
  // while the snapshot streams.
  Status PinForSnapshot() {
    Status s = snap_conn_.Open(req_.db_path, false, req_.busy_timeout_ms);
    if (!s.ok()) return s;
    int one = 1;
    sqlite3_file_control(snap_conn_.raw(), "main", SQLITE_FCNTL_PERSIST_WAL, &one);
    return snap_conn_.BeginRead();
  }

  Status NewGeneration(const std::string& reason) {
    // Under the write lock (the caller starts with it when there is no
    // position; an unknown epoch only gets here with it).
    if (!conn_.in_txn()) return Status::Internal("new generation without the write lock");
    out_->reason = reason;
    if (!req_.allow_new_generation) {
      out_->needs_new_generation = true;
      return Status::OK();
    }
    out_->new_generation = true;
    Status ms = DbMtime(req_.db_path, &db_);
    if (!ms.ok()) return ms;
    Position np;
    np.gen = req_.new_generation;
    np.db_mtime_ns = db_.mtime_ns;
    np.txid = pos_.txid + 1;
    np.txid_ts_ms = req_.now_ms;
    if (wal_.valid()) {
      WalScan scan;
      Status s = wal_.r.ScanCommitted(0, wal_.r.header_chain(), &scan);
      if (!s.ok()) return s;
      np.has_wal = true;
      np.salt1 = wal_.hdr().salt1;
      np.salt2 = wal_.hdr().salt2;
      np.ckpt_seq = wal_.hdr().ckpt_seq;
      np.frames = scan.end;
      np.cksum1 = scan.chain.s1;
      np.cksum2 = scan.chain.s2;
    }
    out_->pos = np;
    out_->wal_frames = np.frames;
    Status s = PinForSnapshot();
    if (!s.ok()) return s;
    conn_.End();  // no checkpoint before the snapshot is durable
    return WriteSnapshot(np.txid, SnapshotKind::kNewGeneration);
  }

  Status CheckpointUnderLock() {
    Status s = ckpt_conn_.Open(req_.db_path, false, req_.busy_timeout_ms);
    if (!s.ok()) return s;
    int one = 1;
    sqlite3_file_control(ckpt_conn_.raw(), "main", SQLITE_FCNTL_PERSIST_WAL, &one);
    int log = 0, ckpt = 0;
    s = ckpt_conn_.Checkpoint(SQLITE_CHECKPOINT_PASSIVE, &log, &ckpt);
    if (!s.ok()) return s.code() == Code::kUnavailable ? Status::OK() : s;  // busy: try next time
    out_->checkpointed_frames = ckpt;
    full_checkpoint_ = log >= 0 && ckpt == log && uint64_t(log) == out_->pos.frames;
    return Status::OK();
  }

  // Streams every page of the state pinned by snap_conn_ into a spool file.
  Status WriteSnapshot(uint64_t txid, SnapshotKind kind) {
    const bool new_generation = kind == SnapshotKind::kNewGeneration;
    Position& np = out_->pos;
    const uint32_t ps = wal_.valid() ? wal_.hdr().page_size : db_.page_size;
    uint32_t pages = db_.header_pages;
    PageSource src(&wal_.r, &db_, ps, 0);
    if (wal_.valid() && np.frames > 0) {
      Status s = src.IndexFrames(0, np.frames);
      if (!s.ok()) return s;
      // The size after the last commit frame in the epoch.
      WalFrameHeader fh;
      s = wal_.r.ReadFrameHeader(np.frames - 1, &fh);
      if (!s.ok()) return s;
      pages = fh.commit_size;
    }
    src.SetPages(pages);
    Status s = MakeDirs(req_.spool_dir);
    if (!s.ok()) return s;
    out_->snapshot_path = req_.spool_dir + "/snapshot" + TempSuffix();
    FileSink sink;
    s = sink.Open(out_->snapshot_path);
    if (!s.ok()) return s;
    SegmentHeader h;
    h.kind = ObjectKind::kSnapshot;
    h.page_size = ps;
    h.generation = np.generation();
    SegmentBuilder builder(&sink, h, req_.zstd_level);
    s = builder.Start();
    if (!s.ok()) return s;
    // A snapshot in the same generation is checked against the captured
    // state (its checksum, below); a generation's first has nothing to be
    // compared with, so SQLite checks its pages.
    SnapshotCheck check;
    if (new_generation && uint64_t(pages) * ps <= req_.verify_snapshot_max_bytes) {
      s = check.Open(req_.spool_dir, ps);
      if (!s.ok()) return s;
    }
    BlockPipeline pipe(&builder, uint64_t(pages) * ps > BlockPipeline::kThreadedBytes);
    uint64_t c = 0;
    std::vector<uint32_t> pg;
    std::string data, page;
    for (uint32_t p = 1; p <= pages; p++) {
      s = src.Read(p, &page);
      if (!s.ok()) return s;
      if (req_.snapshot_page_hook) req_.snapshot_page_hook(p, &page);
      if (check.active()) {
        s = check.AddPage(p, page);
        if (!s.ok()) return s;
      }
      c ^= PageHash(p, page.data(), ps);
      pg.push_back(p);
      data += page;
      if (pg.size() == kMaxPagesPerBlock || p == pages) {
        s = pipe.Add(txid, req_.now_ms, pages, c, p == pages ? kBlockTxEnd : 0, &pg, &data);
        if (!s.ok()) return s;
      }
    }
    if (pages == 0) {
      s = pipe.Add(txid, req_.now_ms, 0, 0, kBlockTxEnd, &pg, &data);
      if (!s.ok()) return s;
    }
    s = pipe.Drain();
    if (!s.ok()) return s;
    SegmentHeader fh;
    fh.first_txid = fh.last_txid = txid;
    fh.first_ts_ms = fh.last_ts_ms = req_.now_ms;
    fh.checksum_after = c;
    fh.pages_after = pages;
    s = builder.Finish(fh);
    // No fsync: the spool file is only staging; after a crash the
    // snapshot is simply taken again.
    if (!s.ok()) return s;
    snap_conn_.End();
    if (!new_generation && c != np.checksum) {
      // The incremental checksum drifted from the real content: the
      // database changed behind our back without a detectable WAL restart.
      // Nothing of this attempt is shipped; the caller abandons the
      // generation and the next sync starts a new one from a snapshot.
      ::unlink(out_->snapshot_path.c_str());
      out_->snapshot_path.clear();
      out_->has_segment = false;
      out_->segment.clear();
      if (!out_->segment_path.empty()) ::unlink(out_->segment_path.c_str());
      out_->segment_path.clear();
      out_->drift = true;
      out_->reason = "database checksum differs from the captured state at snapshot time";
      return Status::OK();
    }
    if (check.active()) {
      s = check.Finish(pages);
      if (!s.ok()) return s.Annotate("database " + req_.db_path + ": ");
    }
    fh.kind = ObjectKind::kSnapshot;
    fh.page_size = ps;
    fh.generation = np.generation();
    out_->snapshot_header = fh;
    out_->has_snapshot = true;
    np.checksum = c;
    np.db_pages = pages;
    np.page_size = ps;
    np.snapshot_ms = req_.now_ms;
    np.snapshot_txid = txid;
    if (new_generation) np.txid_ts_ms = req_.now_ms;
    return Status::OK();
  }

  const CaptureRequest& req_;
  Position pos_;
  CaptureResult* out_;
  SqliteConn own_conn_;
  SqliteConn& conn_;  // req_.conn (kept by the caller between captures) or own_conn_
  SqliteConn snap_conn_, ckpt_conn_;
  bool full_checkpoint_ = false;  // our checkpoint copied every captured frame
  bool retried_corruption_ = false;
  DbFile db_;
  WalFile wal_;
  std::string pos_frame_;  // the frame before the position, when PositionFrameMatches read it whole and it matched
};

}  // namespace

Status CaptureChanges(const CaptureRequest& req, const Position& pos, CaptureResult* out) {
  Capture c(req, pos, out);
  Status s = c.Run();
  if (!s.ok() && !out->snapshot_path.empty()) ::unlink(out->snapshot_path.c_str());
  if (!s.ok() && !out->segment_path.empty()) ::unlink(out->segment_path.c_str());
  if (out->pos.page_size == 0 && s.ok()) {
    // first position: page size from whatever was captured
    if (out->has_snapshot) out->pos.page_size = out->snapshot_header.page_size;
  }
  return s;
}

Status ComputeDatabaseChecksum(const std::string& db_path, uint64_t* checksum, uint32_t* pages, uint32_t* page_size) {
  SqliteConn conn;
  Status s = conn.Open(db_path, false, 5000);
  if (!s.ok()) return s;
  int one = 1;
  sqlite3_file_control(conn.raw(), "main", SQLITE_FCNTL_PERSIST_WAL, &one);
  s = conn.BeginWrite();
  if (!s.ok()) return s;
  DbFile db;
  WalFile wal;
  s = OpenDb(conn, db_path, &db, true);
  if (s.ok()) s = OpenWal(conn, db_path, &wal);
  if (!s.ok()) return s;
  uint32_t ps = wal.valid() ? wal.hdr().page_size : db.page_size;
  uint32_t n = db.header_pages;
  PageSource src(&wal.r, &db, ps, 0);
  if (wal.valid()) {
    WalScan scan;
    s = wal.r.ScanCommitted(0, wal.r.header_chain(), &scan);
    if (!s.ok()) return s;
    if (scan.end > 0) {
      s = src.IndexFrames(0, scan.end);
      if (!s.ok()) return s;
      n = scan.txs.back().db_pages;
    }
  }
  src.SetPages(n);
  s = src.FullChecksum(checksum);
  *pages = n;
  *page_size = ps;
  return s;
}

}  // namespace replite
