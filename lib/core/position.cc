#include "core/position.h"

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "util/text_fields.h"

namespace replite {

namespace {

// Appends ' ' and v in decimal (as printf's %llu / %lld / %u / %d would).
template <typename T>
void Field(std::string* out, T v) {
  char buf[24];
  buf[0] = ' ';
  const auto r = std::to_chars(buf + 1, buf + sizeof buf, v);
  out->append(buf, size_t(r.ptr - buf));
}

}  // namespace

// (std::to_chars, not snprintf: a position is encoded at every save of a
// hot database's position, and printf's format parsing was ~1% of a packed
// process's CPU at 1,000 commits/s.)
std::string Position::Encode() const {
  std::string out;
  out.reserve(192);
  out += "v1 ";
  out += gen ? Hex16(gen) : "-";
  Field(&out, txid);
  Field(&out, txid_ts_ms);
  Field(&out, page_size);
  Field(&out, db_pages);
  Field(&out, checksum);
  Field(&out, has_wal ? 1 : 0);
  Field(&out, salt1);
  Field(&out, salt2);
  Field(&out, ckpt_seq);
  Field(&out, frames);
  Field(&out, cksum1);
  Field(&out, cksum2);
  Field(&out, expect_restart ? 1 : 0);
  Field(&out, snapshot_ms);
  Field(&out, snapshot_txid);
  Field(&out, db_mtime_ns);
  return out;
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
