// ConnCache: the library's SQLite connections to hot databases (and their
// WAL frame indexes), kept between syncs. Opening a connection costs a schema parse, the wal-index
// mapping and several opens under SQLite's global VFS lock; a database that
// commits every second would pay that every sync. An idle database holds
// none: entries unused for `idle_us` are closed by Sweep, and the least
// recently used one is closed when the cache is full (unless it was used
// within kWarmUs: then the newcomer is closed instead, see Put), so the descriptors
// held stay within the budget the capacity is derived from: seven per
// entry (database, WAL and wal-index of the kept connection, database and
// WAL of the read-mark connection, and up to two descriptors of the job's
// snapshot and checkpoint connections, whose close SQLite's unix VFS
// defers while another connection of the process holds a lock on the
// database file, as a WAL-mode connection does for as long as it is open).
//
// Thread-safety: all methods are safe to call concurrently; a connection
// taken out is used by one job and then put back (or dropped).
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/sqlite_conn.h"
#include "core/sqlite_files.h"
#include "core/wal_capture.h"

namespace replite {

// What is kept for one hot database: its connection, the page numbers of
// its WAL frames already captured (see WalFrameIndex), and the connection
// whose open read transaction is the database's read mark between syncs
// (CaptureRequest::pin; closing the entry releases it, so an idle database
// holds no mark).
struct KeptDb {
  KeptDb() = default;
  ~KeptDb() {
    if (taken) taken->fetch_sub(1, std::memory_order_relaxed);
  }
  KeptDb(const KeptDb&) = delete;
  KeptDb& operator=(const KeptDb&) = delete;
  SqliteConn conn;
  WalFrameIndex frames;
  SqliteConn pin;
  WalStat wal_stat;  // conn's WAL by its descriptor, once proven (core/sqlite_files.h)
  bool cached = false;  // has been in the cache (Put counts the others as opened)
  // Set while taken out of the cache by a job: it still counts against
  // the capacity (released by Put, or here if the job drops it).
  std::atomic<size_t>* taken = nullptr;
};

class ConnCache {
 public:
  static constexpr int kFdsPerConn = 7;
  // A full cache does not close an entry used this recently to keep a
  // newcomer's: with more databases syncing every second than it holds,
  // plain LRU closed each one before its next sync (a hit rate of 0: at
  // N=100,000 with 1,000 hot and room for 804, every capture reopened its
  // connection and re-read its WAL's frame headers, ~1 ms a commit); now
  // the entries kept stay kept and only the rest reopen.
  static constexpr int64_t kWarmUs = 5 * 1000 * 1000;

  ConnCache(size_t capacity, int64_t idle_us) : capacity_(capacity), idle_us_(idle_us) {}

  // What is kept for database `id` at `path`, or a new entry with a
  // closed connection for the capture to open. Never null.
  std::unique_ptr<KeptDb> Take(uint32_t id, const std::string& path);
  // Returns a connection after a job (closed ones are dropped; so is a
  // new one when the cache is full of warm entries).
  void Put(uint32_t id, const std::string& path, std::unique_ptr<KeptDb> c, int64_t now_us);
  // Closes the connections unused for longer than the idle time (or than
  // `idle_us`, after a burst: core/burst_trim.h).
  void Sweep(int64_t now_us) { Sweep(now_us, idle_us_); }
  void Sweep(int64_t now_us, int64_t idle_us);
  // Closes the connection of database `id` (removed) or all of them.
  void Drop(uint32_t id);
  void Clear();

  size_t size();
  size_t capacity() const { return capacity_; }
  // Connections opened by jobs so far (Put of an entry new to the cache).
  uint64_t opened() const { return opened_.load(std::memory_order_relaxed); }
  // New connections closed after their job because the cache was full of
  // warm entries (fd_budget too small for the hot databases).
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  // What the kept entries hold: SQLite's accounting of both connections of
  // each (core/memory_report.h), their frame indexes, paths and list nodes.
  uint64_t MemoryBytes();

 private:
  struct Entry {
    uint32_t id;
    std::string path;
    int64_t used_us;
    std::unique_ptr<KeptDb> conn;
  };
  const size_t capacity_;
  const int64_t idle_us_;
  std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<uint32_t, std::list<Entry>::iterator> by_id_;
  std::atomic<uint64_t> opened_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<size_t> taken_{0};  // kept entries out with their job
};

}  // namespace replite
