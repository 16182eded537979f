// BlockPipeline (lib/core/block_pipeline.h): a segment built through the
// pipeline's second thread is byte for byte the one built directly, and a
// write error reaches the caller instead of hanging it.
#include "core/block_pipeline.h"

#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "format/segment.h"

using namespace replite;

namespace {

constexpr uint32_t kPs = 4096;

// Blocks of a few transactions, some of them several blocks long.
std::string BuildSegment(bool threaded, Status* result) {
  SegmentHeader h;
  h.page_size = kPs;
  h.generation = "0123456789abcdef";
  StringSink sink;
  SegmentBuilder b(&sink, h, 1);
  REQUIRE(b.Start().ok());
  BlockPipeline pipe(&b, threaded);
  std::mt19937 rng(5);
  std::vector<uint32_t> pg;
  std::string data;
  for (uint64_t txid = 1; txid <= 6; txid++) {
    const int blocks = 1 + int(txid % 3);
    for (int k = 0; k < blocks; k++) {
      for (uint32_t p = 0; p < 40; p++) {
        pg.push_back(uint32_t(1 + p + 40 * k));
        std::string page(kPs, char(txid));
        for (size_t i = 0; i < kPs; i += 16) page[i] = char(rng());
        data += page;
      }
      const bool last = k + 1 == blocks;
      Status s = pipe.Add(txid, 1000 + int64_t(txid), 200, last ? txid * 7 : 0, last ? kBlockTxEnd : 0, &pg, &data);
      REQUIRE(s.ok());
      REQUIRE(pg.empty());
      REQUIRE(data.empty());
    }
  }
  *result = pipe.Drain();
  SegmentHeader f;
  f.first_txid = 1;
  f.last_txid = 6;
  REQUIRE(b.Finish(f).ok());
  return sink.buffer();
}

// Fails every append after the first `ok` ones.
class FailingSink final : public SegmentSink {
 public:
  explicit FailingSink(int ok) : ok_(ok) {}
  using SegmentSink::Append;
  Status Append(const char*, size_t n) override {
    if (ok_-- <= 0) return Status::IOError("disk full (test)");
    size_ += n;
    return Status::OK();
  }
  Status WriteAt(uint64_t, const std::string&) override { return Status::OK(); }
  uint64_t Size() const override { return size_; }

 private:
  int ok_;
  uint64_t size_ = 0;
};

}  // namespace

TEST_CASE("a segment built through the block pipeline thread is the one built directly", "[format][pipeline]") {
  Status direct_s, threaded_s;
  const std::string direct = BuildSegment(false, &direct_s);
  const std::string threaded = BuildSegment(true, &threaded_s);
  REQUIRE(direct_s.ok());
  REQUIRE(threaded_s.ok());
  CHECK(threaded.size() == direct.size());
  CHECK(threaded == direct);
}

TEST_CASE("a block pipeline reports a write error and stops taking blocks", "[format][pipeline]") {
  for (bool threaded : {false, true}) {
    INFO("threaded " << threaded);
    SegmentHeader h;
    h.page_size = kPs;
    FailingSink sink(3);  // the header and two blocks
    SegmentBuilder b(&sink, h, 1);
    REQUIRE(b.Start().ok());
    BlockPipeline pipe(&b, threaded);
    Status first_error;
    for (uint64_t txid = 1; txid <= 50 && first_error.ok(); txid++) {
      std::vector<uint32_t> pg{1};
      std::string data(kPs, 'x');
      first_error = pipe.Add(txid, 0, 1, 0, kBlockTxEnd, &pg, &data);
    }
    if (first_error.ok()) first_error = pipe.Drain();
    CHECK(first_error.code() == Code::kIOError);
    CHECK(first_error.message().find("disk full") != std::string::npos);
    CHECK(pipe.Drain().code() == Code::kIOError);
  }
}
