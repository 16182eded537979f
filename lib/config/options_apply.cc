#include "config/options_apply.h"

#include <cstring>
#include <string>
#include <vector>

#include "config/value_parse.h"

namespace replite::config {
namespace {

constexpr const char* kDbKeys =
    "replica-url, sync-interval-ms, poll-interval-ms, snapshot-interval, retention, checkpoint-quiet-ms, "
    "checkpoint-pages, truncate-pages, metrics-group, enable-wal, compression-level, compaction-levels, "
    "keep-every-txid, pack-window-ms, pack-max-bytes, pack-unpack, pack-compression-level";
constexpr const char* kReplicatorKeys =
    "state-dir, worker-threads, max-connections, max-connections-per-host, fd-budget, memory-cap, ca-file, "
    "verify-tls, position-flush-ms, spool-cap, lease-ttl, snapshot-verify-max, malloc-arena-max";

// ParseDuration's bare_ms: the keys named "...-ms" take a bare number as
// milliseconds; the others need a unit.
constexpr bool kBareMs = true, kUnitNeeded = false;

}  // namespace

const char* DbOptionKeys() { return kDbKeys; }

Status ApplyDbOption(DatabaseOptions* o, std::string_view key, std::string_view v, bool* known,
                     std::string_view shown) {
  const std::string_view n = shown.empty() ? key : shown;
  *known = true;
  int64_t i = 0;
  Status s;
  if (key == "replica-url") {
    s = CheckReplicaUrl(n, v);
    if (s.ok()) o->replica_url = std::string(v);
  } else if (key == "sync-interval-ms") {
    if ((s = ParseDuration(n, v, kBareMs, &i)).ok()) o->sync_interval_ms = i;
  } else if (key == "poll-interval-ms") {
    if ((s = ParseDuration(n, v, kBareMs, &i)).ok()) o->poll_interval_ms = i;
  } else if (key == "snapshot-interval") {
    if ((s = ParsePositiveDuration(n, v, kUnitNeeded, &i)).ok()) o->snapshot_interval_ms = i;
  } else if (key == "retention") {
    if ((s = ParseDuration(n, v, kUnitNeeded, &i)).ok()) o->retention_ms = i;
  } else if (key == "checkpoint-quiet-ms") {
    if ((s = ParseDuration(n, v, kBareMs, &i)).ok()) o->checkpoint_quiet_ms = i;
  } else if (key == "checkpoint-pages") {
    if ((s = ParseInt(n, v, 1, 0x7fffffff, &i)).ok()) o->checkpoint_pages = uint32_t(i);
  } else if (key == "truncate-pages") {
    if ((s = ParseInt(n, v, 1, 0x7fffffff, &i)).ok()) o->truncate_pages = uint32_t(i);
  } else if (key == "metrics-group") {
    if (v.empty()) return BadValue(n, v, "a non-empty label value");
    o->metrics_group = std::string(v);
  } else if (key == "enable-wal") {
    bool b = false;
    if ((s = ParseBool(n, v, &b)).ok()) o->enable_wal = b;
  } else if (key == "compression-level") {
    if ((s = ParseInt(n, v, 1, 22, &i)).ok()) o->compression_level = int(i);
  } else if (key == "compaction-levels") {
    // "off", or durations separated by '+' ("30s+5m+1h"), each a multiple
    // of the one before.
    std::vector<int64_t> levels;
    if (v != "off") {
      std::string_view rest = v;
      while (s.ok()) {
        const size_t plus = rest.find('+');
        s = ParsePositiveDuration(n, rest.substr(0, plus), kUnitNeeded, &i);
        if (!s.ok()) break;
        if (!levels.empty() && i % levels.back() != 0)
          return BadValue(n, v, "\"off\" or durations joined by '+' (\"30s+5m+1h\"), each a multiple of the one before");
        levels.push_back(i);
        if (plus == std::string_view::npos) break;
        rest = rest.substr(plus + 1);
      }
      if (s.ok() && levels.size() > 9) return BadValue(n, v, "at most 9 levels");
    }
    if (s.ok()) o->compaction_levels_ms = levels;
  } else if (key == "keep-every-txid") {
    if ((s = ParseDuration(n, v, kUnitNeeded, &i)).ok()) o->keep_every_txid_ms = i;
  } else if (key == "pack-window-ms") {
    if ((s = ParseDuration(n, v, kBareMs, &i)).ok()) {
      if (i > 60 * 1000) return BadValue(n, v, "0 (off) or a window of at most 60 s (\"250ms\", \"1s\")");
      o->pack_window_ms = i;
    }
  } else if (key == "pack-max-bytes") {
    uint64_t b = 0;
    if ((s = ParseBytes(n, v, &b)).ok()) {
      if (b < (64 << 10) || b > (1ull << 30)) return BadValue(n, v, "a size from 64KiB to 1GiB (\"8MiB\")");
      o->pack_max_bytes = b;
    }
  } else if (key == "pack-unpack") {
    if ((s = ParsePositiveDuration(n, v, kUnitNeeded, &i)).ok()) o->pack_unpack_ms = i;
  } else if (key == "pack-compression-level") {
    // zstd's fast levels are negative: the one option with a sign.
    const bool fast = !v.empty() && v[0] == '-';
    if (!ParseInt(n, fast ? v.substr(1) : v, 1, fast ? 7 : 22, &i).ok())
      return BadValue(n, v, "a zstd level from -7 to -1 (fast) or 1 to 22 (\"-1\", \"3\")");
    o->pack_compression_level = int(fast ? -i : i);
  } else {
    *known = false;
  }
  return s;
}

Status ApplyReplicatorOption(ReplicatorOptions* o, std::string_view key, std::string_view v, std::string_view shown) {
  const std::string_view n = shown.empty() ? key : shown;
  int64_t i = 0;
  Status s;
  if (key == "replica-url") {  // the root here, not a database's own URL
    s = CheckReplicaUrl(n, v);
    if (s.ok()) o->replica_url = std::string(v);
  } else if (key == "state-dir") {
    s = ParsePath(n, v, &o->state_dir);
  } else if (key == "worker-threads") {
    if ((s = ParseInt(n, v, 1, 256, &i)).ok()) o->worker_threads = int(i);
  } else if (key == "max-connections") {
    if ((s = ParseInt(n, v, 1, 65536, &i)).ok()) o->max_connections = int(i);
  } else if (key == "max-connections-per-host") {
    if ((s = ParseInt(n, v, 1, 65536, &i)).ok()) o->max_connections_per_host = int(i);
  } else if (key == "fd-budget") {
    if ((s = ParseInt(n, v, 1, 1 << 20, &i)).ok()) o->fd_budget = int(i);
  } else if (key == "malloc-arena-max") {
    if ((s = ParseInt(n, v, 0, 1024, &i)).ok()) o->malloc_arena_max = int(i);
  } else if (key == "memory-cap") {
    uint64_t b = 0;
    if ((s = ParseBytes(n, v, &b)).ok()) {
      if (b == 0) return BadValue(n, v, "a positive byte count (e.g. 256M)");
      o->memory_cap = b;
    }
  } else if (key == "spool-cap") {
    uint64_t b = 0;
    if ((s = ParseBytes(n, v, &b)).ok()) o->spool_cap = b;
  } else if (key == "ca-file") {
    o->ca_file = std::string(v);  // "" = the system bundle (the default)
  } else if (key == "verify-tls") {
    bool b = true;
    if ((s = ParseBool(n, v, &b)).ok()) o->verify_tls = b;
  } else if (key == "position-flush-ms") {
    if ((s = ParsePositiveDuration(n, v, kBareMs, &i)).ok()) o->position_flush_ms = i;
  } else if (key == "lease-ttl") {
    if ((s = ParseDuration(n, v, kUnitNeeded, &i)).ok()) {
      if (i != 0 && (i < 1000 || i > 3600 * 1000)) return BadValue(n, v, "0s (no leases) or 1s..1h");
      o->lease_ttl_ms = i;
    }
  } else if (key == "snapshot-verify-max") {
    uint64_t b = 0;
    if ((s = ParseBytes(n, v, &b)).ok()) o->snapshot_verify_max_bytes = b;
  } else {
    bool known = false;
    s = ApplyDbOption(&o->defaults, key, v, &known, shown);
    if (!known)
      return Status::InvalidArgument("unknown option " + Quote(key) + " (known: replica-url, " + kReplicatorKeys +
                                     ", " + std::string(kDbKeys).substr(std::strlen("replica-url, ")) + ")");
  }
  return s;
}

Status ApplyRestoreOption(RestoreOptions* o, std::string_view key, std::string_view v, std::string_view shown) {
  const std::string_view n = shown.empty() ? key : shown;
  Status s;
  if (key == "txid") {
    s = ParseTxid(n, v, &o->txid);
  } else if (key == "timestamp") {
    int64_t ms = 0;
    if ((s = ParseTimestamp(n, v, &ms)).ok()) o->timestamp_ms = ms;
  } else if (key == "overwrite") {
    s = ParseBool(n, v, &o->overwrite);
  } else if (key == "parallelism") {
    int64_t i = 0;
    if ((s = ParseInt(n, v, 1, 256, &i)).ok()) o->parallelism = int(i);
  } else if (key == "stop-at-last-good") {
    s = ParseBool(n, v, &o->stop_at_last_good);
  } else {
    return Status::InvalidArgument("unknown restore option " + Quote(key) +
                                   " (known: txid, timestamp, overwrite, parallelism, stop-at-last-good)");
  }
  return s;
}

}  // namespace replite::config
