#include "wal/wal_shm.h"

#include <cstring>

namespace replite {
namespace {

uint32_t NativeU32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

// WalIndexHdr (48 bytes, twice): iVersion, unused, iChange, isInit,
// bigEndCksum, szPage, mxFrame at 16, ... Then WalCkptInfo at 96:
// nBackfill, aReadMark[5], aLock[8], nBackfillAttempted at 128, notUsed0.
WalIndexInfo ParseWalIndexHeader(const unsigned char* p) {
  WalIndexInfo i;
  i.mx_frame = NativeU32(p + 16);
  i.n_backfill = NativeU32(p + 96);
  i.n_backfill_attempted = NativeU32(p + 96 + 32);
  return i;
}

}  // namespace replite
