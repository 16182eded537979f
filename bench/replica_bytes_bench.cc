// What a replica's segments cost against the bytes they carry (issue 13's
// figure: uploaded bytes <= 1.2 x the zstd -1 size of the WAL bytes written).
// Reads every segment of a file:// replica (segments only: snapshots are
// full images, counted apart), decodes its blocks, and compares the
// segments' stored bytes with zstd -1 over the concatenated page bytes of
// every transaction in txid order: the WAL frames' pages, compressed as
// one stream (the baseline), versus replite's per-transaction blocks.
//
//   build/bench/replica_bytes_bench REPLICA_DIR
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "format/segment.h"

using namespace replite;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: replica_bytes_bench REPLICA_DIR\n");
    return 2;
  }
  std::vector<std::string> segs;
  uint64_t snap_bytes = 0, snaps = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(argv[1])) {
    if (!e.is_regular_file()) continue;
    const std::string p = e.path().string();
    if (p.size() > 4 && p.compare(p.size() - 4, 4, ".seg") == 0) segs.push_back(p);
    if (p.size() > 5 && p.compare(p.size() - 5, 5, ".snap") == 0) {
      snap_bytes += e.file_size();
      snaps++;
    }
  }
  std::sort(segs.begin(), segs.end());  // txid order within a generation (16 hex digits)
  ZSTD_CCtx* cx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cx, ZSTD_c_compressionLevel, 1);
  std::string out(ZSTD_CStreamOutSize(), '\0');
  uint64_t stored = 0, raw = 0, zbytes = 0, txs = 0, frames = 0, per_seg = 0;
  std::string seg_pages, seg_out;
  for (const auto& p : segs) {
    std::ifstream in(p, std::ios::binary);
    std::string obj((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    stored += obj.size();
    SegmentHeader h;
    std::vector<DecodedBlock> blocks;
    Status s = DecodeSegment(obj, &h, &blocks);
    if (!s.ok()) {
      std::fprintf(stderr, "%s: %s\n", p.c_str(), s.ToString().c_str());
      return 1;
    }
    seg_pages.clear();
    for (const auto& b : blocks) {
      seg_pages += b.pages;
      raw += b.pages.size();
      frames += b.pgnos.size();
      txs += (b.flags & kBlockTxEnd) ? 1 : 0;
      ZSTD_inBuffer ib{b.pages.data(), b.pages.size(), 0};
      while (ib.pos < ib.size) {
        ZSTD_outBuffer ob{out.data(), out.size(), 0};
        ZSTD_compressStream2(cx, &ob, &ib, ZSTD_e_continue);
        zbytes += ob.pos;
      }
    }
    // What one zstd frame per segment (instead of one per block) would
    // store: the repeated versions of a page inside a segment compress
    // against each other.
    seg_out.resize(ZSTD_compressBound(seg_pages.size()));
    per_seg += ZSTD_compress(seg_out.data(), seg_out.size(), seg_pages.data(), seg_pages.size(), 1);
  }
  for (;;) {
    ZSTD_inBuffer ib{nullptr, 0, 0};
    ZSTD_outBuffer ob{out.data(), out.size(), 0};
    const size_t rem = ZSTD_compressStream2(cx, &ob, &ib, ZSTD_e_end);
    zbytes += ob.pos;
    if (rem == 0) break;
  }
  ZSTD_freeCCtx(cx);
  std::printf("segments: %zu holding %llu transactions, %llu page frames (%.1f MB of pages)\n", segs.size(),
              (unsigned long long)txs, (unsigned long long)frames, raw / 1e6);
  std::printf("baseline zstd -1 over those pages as one stream: %.2f MB\n", zbytes / 1e6);
  std::printf("segments as stored: %.2f MB = %.2fx the baseline\n", stored / 1e6,
              zbytes ? double(stored) / double(zbytes) : 0.0);
  std::printf("the same pages with one zstd -1 frame per segment: %.2f MB = %.2fx the baseline\n", per_seg / 1e6,
              zbytes ? double(per_seg) / double(zbytes) : 0.0);
  std::printf("snapshots: %llu, %.2f MB\n", (unsigned long long)snaps, snap_bytes / 1e6);
  return 0;
}
