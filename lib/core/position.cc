#include "core/position.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace replite {

std::string Position::Encode() const {
  char buf[512];
  std::snprintf(buf, sizeof buf, "v1 %s %llu %lld %u %u %llu %d %u %u %u %llu %u %u %d %lld %llu %lld",
                gen ? Hex16(gen).c_str() : "-", (unsigned long long)txid, (long long)txid_ts_ms,
                page_size, db_pages, (unsigned long long)checksum, has_wal ? 1 : 0, salt1, salt2, ckpt_seq,
                (unsigned long long)frames, cksum1, cksum2, expect_restart ? 1 : 0, (long long)snapshot_ms,
                (unsigned long long)snapshot_txid, (long long)db_mtime_ns);
  return buf;
}

bool Position::Decode(const std::string& s, Position* out) {
  char gen[64];
  unsigned long long txid, checksum, frames, snap_txid;
  long long ts, snap_ms, db_mtime = 0;
  unsigned ps, pages, s1, s2, ck, c1, c2;
  int has_wal, expect;
  int n = std::sscanf(s.c_str(), "v1 %63s %llu %lld %u %u %llu %d %u %u %u %llu %u %u %d %lld %llu %lld", gen, &txid,
                      &ts, &ps, &pages, &checksum, &has_wal, &s1, &s2, &ck, &frames, &c1, &c2, &expect, &snap_ms,
                      &snap_txid, &db_mtime);
  if (n != 16 && n != 17) return false;
  Position p;
  p.gen = std::strcmp(gen, "-") == 0 ? 0 : std::strtoull(gen, nullptr, 16);
  p.txid = txid;
  p.txid_ts_ms = ts;
  p.page_size = ps;
  p.db_pages = pages;
  p.checksum = checksum;
  p.has_wal = has_wal != 0;
  p.salt1 = s1;
  p.salt2 = s2;
  p.ckpt_seq = ck;
  p.frames = frames;
  p.cksum1 = c1;
  p.cksum2 = c2;
  p.expect_restart = expect != 0;
  p.snapshot_ms = snap_ms;
  p.snapshot_txid = snap_txid;
  p.db_mtime_ns = db_mtime;
  *out = p;
  return true;
}

}  // namespace replite
