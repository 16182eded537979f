// [format] Segment and snapshot objects: round trip, and every kind of
// damage is detected with an error that says what is wrong.
#include <catch2/catch.hpp>
#include <random>

#include "format/layout.h"
#include "format/segment.h"
#include "replica/manifest.h"

using namespace replite;

namespace {

std::string Page(uint32_t ps, int seed) {
  std::string p(ps, '\0');
  std::mt19937 rng(seed);
  for (size_t i = 0; i < ps; i += 7) p[i] = static_cast<char>(rng());
  return p;
}

std::string Build(uint32_t ps, int txs, SegmentHeader* out_h) {
  SegmentHeader h;
  h.page_size = ps;
  h.generation = "0123456789abcdef";
  StringSink sink;
  SegmentBuilder b(&sink, h, 3);
  REQUIRE(b.Start().ok());
  for (int t = 0; t < txs; t++) {
    std::vector<uint32_t> pg;
    std::string data;
    for (int k = 0; k <= t % 3; k++) {
      pg.push_back(uint32_t(1 + k + t));
      data += Page(ps, t * 10 + k);
    }
    REQUIRE(b.AddBlock(uint64_t(10 + t), 1000 + t, uint32_t(5 + t), uint64_t(0xabc0 + t), kBlockTxEnd, pg, data).ok());
  }
  SegmentHeader f;
  f.first_txid = 10;
  f.last_txid = uint64_t(10 + txs - 1);
  f.first_ts_ms = 1000;
  f.last_ts_ms = 1000 + txs - 1;
  f.checksum_before = 1;
  f.checksum_after = uint64_t(0xabc0 + txs - 1);
  REQUIRE(b.Finish(f).ok());
  *out_h = f;
  return sink.buffer();
}

}  // namespace

TEST_CASE("segment round trip", "[format]") {
  for (uint32_t ps : {512u, 4096u, 65536u}) {
    SegmentHeader want;
    std::string obj = Build(ps, 7, &want);
    SegmentHeader h;
    std::vector<DecodedBlock> blocks;
    Status s = DecodeSegment(obj, &h, &blocks);
    REQUIRE(s.ok());
    CHECK(h.page_size == ps);
    CHECK(h.first_txid == 10);
    CHECK(h.last_txid == 16);
    CHECK(h.generation == "0123456789abcdef");
    CHECK(h.checksum_before == 1);
    CHECK(h.block_count == 7);
    REQUIRE(blocks.size() == 7);
    for (int t = 0; t < 7; t++) {
      CHECK(blocks[t].txid == uint64_t(10 + t));
      CHECK(blocks[t].db_pages == uint32_t(5 + t));
      CHECK(blocks[t].checksum_after == uint64_t(0xabc0 + t));
      REQUIRE(blocks[t].pgnos.size() == size_t(t % 3 + 1));
      CHECK(blocks[t].pages.substr(0, ps) == Page(ps, t * 10));
    }
  }
}

TEST_CASE("every flipped byte of a segment is detected", "[format]") {
  SegmentHeader want;
  std::string obj = Build(512, 3, &want);
  int undetected = 0;
  for (size_t i = 0; i < obj.size(); i++) {
    std::string bad = obj;
    bad[i] ^= 0x01;
    SegmentHeader h;
    std::vector<DecodedBlock> blocks;
    Status s = DecodeSegment(bad, &h, &blocks);
    if (s.ok()) undetected++;
    else CHECK(s.code() == Code::kCorruption);
  }
  // Only the 4 padding bytes of the trailer are not covered by a checksum.
  CHECK(undetected <= 4);
}

TEST_CASE("truncated segments are refused", "[format]") {
  SegmentHeader want;
  std::string obj = Build(4096, 4, &want);
  for (size_t n : {size_t(0), size_t(10), size_t(127), obj.size() / 2, obj.size() - 1}) {
    SegmentHeader h;
    std::vector<DecodedBlock> blocks;
    Status s = DecodeSegment(obj.substr(0, n), &h, &blocks);
    CHECK(s.code() == Code::kCorruption);
  }
}

TEST_CASE("object keys and manifest round trip", "[format]") {
  ObjectInfo info;
  info.key = SegmentKey("a/b", "0123456789abcdef", 5, 9);
  CHECK(info.key == "a/b/generations/0123456789abcdef/segments/0000000000000005-0000000000000009.seg");
  ObjectRef r;
  REQUIRE(ParseObjectKey("a/b", info, &r));
  CHECK(r.kind == ObjectRef::kSegment);
  CHECK(r.first_txid == 5);
  CHECK(r.last_txid == 9);
  info.key = SnapshotKey("a/b", "0123456789abcdef", 42);
  REQUIRE(ParseObjectKey("a/b", info, &r));
  CHECK(r.kind == ObjectRef::kSnapshot);
  CHECK(r.first_txid == 42);
  info.key = "a/b/generations/zz/segments/x.seg";
  CHECK_FALSE(ParseObjectKey("a/b", info, &r));
  Manifest m;
  m.page_size = 4096;
  m.generations.push_back({"0123456789abcdef", 1, 1000});
  m.generations.push_back({"0123456789abcdee", 77, 2000});
  Manifest back;
  REQUIRE(DecodeManifest(EncodeManifest(m), &back).ok());
  CHECK(back.generations.size() == 2);
  CHECK(back.generations[1].first_txid == 77);
  CHECK(DecodeManifest("garbage", &back).code() == Code::kCorruption);
}
