// Restore: rebuild a database from its replica, at the latest transaction,
// at a txid, or as of a time. The output is written to a temporary file
// beside the target, verified (content checksum recorded at capture, and
// PRAGMA integrity_check), fsynced, then renamed into place: a failed or
// interrupted restore never leaves a partial target.
//
// Thread-safety: independent calls may run concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "replite/export.h"
#include "replite/status.h"

namespace replite {

class Env;

struct RestoreOptions {
  // Restore exactly this transaction. Default: 0 = the latest.
  uint64_t txid = 0;
  // Or: the last transaction captured at or before this time (ms since the
  // Unix epoch, UTC), searching older generations too. Default: 0 = unused.
  int64_t timestamp_ms = 0;
  // Replace an existing output file. Default: false (kAlreadyExists).
  bool overwrite = false;
  // Parallel object fetches. Default: 4.
  int parallelism = 4;
  // Called with (bytes done, bytes total) as objects are applied.
  std::function<void(uint64_t, uint64_t)> progress;
  // Default: nullptr = Env::Default().
  Env* env = nullptr;
};

struct RestoreResult {
  std::string generation;
  uint64_t txid = 0;
  int64_t timestamp_ms = 0;     // capture time of that transaction
  uint32_t page_size = 0;
  uint32_t pages = 0;
  uint64_t checksum = 0;
  bool checksum_verified = false;  // false only where capture recorded none
  uint64_t objects = 0;
  uint64_t bytes = 0;
};

REPLITE_EXPORT Status Restore(const std::string& replica_url, const std::string& output_path, const RestoreOptions& options,
               RestoreResult* result = nullptr);

struct GenerationInfo {
  std::string id;
  uint64_t first_txid = 0, last_txid = 0;
  int64_t first_ts_ms = 0, last_ts_ms = 0;
  uint64_t snapshots = 0, segments = 0;
  uint64_t bytes = 0;
};

// The generations stored at `replica_url`, oldest first.
REPLITE_EXPORT Status ListGenerations(const std::string& replica_url, std::vector<GenerationInfo>* out);

// Parses an RFC 3339 UTC time ("2026-11-26T21:00:00Z", fractional seconds
// and "+00:00" accepted) into ms since the Unix epoch.
REPLITE_EXPORT Status ParseRfc3339(const std::string& text, int64_t* ms);
REPLITE_EXPORT std::string FormatRfc3339(int64_t ms);

}  // namespace replite
