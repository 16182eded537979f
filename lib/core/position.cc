#include "core/position.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "util/text_fields.h"

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

bool Position::Decode(std::string_view s, Position* out) {
  TextFields f(s);
  std::string_view version, gen;
  unsigned has_wal, expect;
  Position p;
  if (!f.Word(&version) || version != "v1" || !f.Word(&gen)) return false;
  if (gen == "-") {
    p.gen = 0;
  } else {
    TextFields g(gen);
    if (!g.Number(&p.gen, 16) || !g.AtEnd()) return false;
  }
  if (!f.Number(&p.txid) || !f.Number(&p.txid_ts_ms) || !f.Number(&p.page_size) || !f.Number(&p.db_pages) ||
      !f.Number(&p.checksum) || !f.Number(&has_wal) || !f.Number(&p.salt1) || !f.Number(&p.salt2) ||
      !f.Number(&p.ckpt_seq) || !f.Number(&p.frames) || !f.Number(&p.cksum1) || !f.Number(&p.cksum2) ||
      !f.Number(&expect) || !f.Number(&p.snapshot_ms) || !f.Number(&p.snapshot_txid))
    return false;
  if (!f.Number(&p.db_mtime_ns)) p.db_mtime_ns = 0;  // (written since issue 12; older records end before it)
  p.has_wal = has_wal != 0;
  p.expect_restart = expect != 0;
  *out = p;
  return true;
}

}  // namespace replite
