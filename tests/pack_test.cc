// [pack] Cross-database packing (format/pack.h, replica/packer.h,
// core/pack_jobs.cc): the pack format and its index, many databases' segments
// in shared packs, restores reading members out of packs (only their bytes),
// durability meaning "the pack is stored", failed packs retried, and packs
// moved out into each database's own objects (also another process's). SQLite
// is the oracle: every restore is checked with PRAGMA integrity_check and
// compared with the source's content at the same txid.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <thread>
#include <fcntl.h>
#include <unistd.h>

#include "fault_store.h"
#include "forwarding_store.h"
#include "moto_server.h"
#include "core/wal_capture.h"
#include "format/layout.h"
#include "format/pack.h"
#include "format/segment.h"
#include "replica/catalog.h"
#include "replica/pack_catalog.h"
#include "replica/packer.h"
#include "replite/replite.h"
#include "store/file_store.h"
#include "test_util.h"
#include "util/file_util.h"

using namespace replite;

namespace {

// A segment of `gen` with one 4 KiB page per txid first..last.
std::string MakeSegment(const std::string& gen, uint64_t first, uint64_t last, SegmentHeader* out = nullptr) {
  SegmentHeader h;
  h.page_size = 4096;
  h.first_txid = first;
  h.last_txid = last;
  h.first_ts_ms = int64_t(first) * 1000;
  h.last_ts_ms = int64_t(last) * 1000;
  h.pages_before = 1;
  h.pages_after = 1;
  h.generation = gen;
  StringSink sink;
  SegmentBuilder b(&sink, h);
  REQUIRE(b.Start().ok());
  for (uint64_t t = first; t <= last; t++) {
    std::string page(4096, char('a' + t % 26));
    REQUIRE(b.AddBlock(t, int64_t(t) * 1000, 1, t * 7, kBlockTxEnd, {1}, page).ok());
  }
  REQUIRE(b.Finish(h).ok());
  if (out) *out = h;
  return sink.buffer();
}

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path().string());
  return out;
}

size_t CountSuffix(const std::vector<std::string>& files, const std::string& part) {
  size_t n = 0;
  for (const auto& f : files) n += f.find(part) != std::string::npos;
  return n;
}

// Counts the bytes GETs return (what a restore reads).
class ByteCountingStore : public test::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Status Put(const std::string& k, const std::string& d, const PutOptions& o, std::string* e) override {
    if (k.find(".pack") == std::string::npos) {
      uint64_t none = UINT64_MAX;
      pack_bytes_at_put.compare_exchange_strong(none, pack_bytes.load());
    }
    return ForwardingStore::Put(k, d, o, e);
  }
  Status Get(const std::string& k, std::string* out, uint64_t off, uint64_t len) override {
    Status s = ForwardingStore::Get(k, out, off, len);
    if (s.ok()) (k.find(".pack") != std::string::npos ? pack_bytes : own_bytes) += out->size();
    return s;
  }
  std::atomic<uint64_t> pack_bytes{0}, own_bytes{0};
  std::atomic<uint64_t> pack_bytes_at_put{UINT64_MAX};  // pack bytes read before the first other object's PUT
};

}  // namespace

TEST_CASE("pack format: each member reads back by its range and damage is caught", "[pack]") {
  const std::string gen = Hex16(NewGenerationNumber(1767225600000));
  PackBuilder b(1767225600123);
  std::vector<std::string> segs;
  for (int i = 0; i < 3; i++) {
    PackMemberEntry e;
    e.name = "tenant-" + std::to_string(i);
    e.generation = gen;
    e.first_txid = 10 * i + 1;
    e.last_txid = 10 * i + 3;
    segs.push_back(MakeSegment(gen, e.first_txid, e.last_txid));
    REQUIRE(b.Add(e, segs.back()).ok());
  }
  const std::string pack = b.Finish();
  PackIndex ix;
  REQUIRE(DecodePack(pack, &ix).ok());
  CHECK(ix.created_ms == 1767225600123);
  REQUIRE(ix.members.size() == 3);
  for (int i = 0; i < 3; i++) {
    const auto& m = ix.members[i];
    CHECK(m.name == "tenant-" + std::to_string(i));
    CHECK(m.generation == gen);
    CHECK(m.first_txid == uint64_t(10 * i + 1));
    CHECK(m.last_txid == uint64_t(10 * i + 3));
    const std::string member = pack.substr(m.offset, m.length);
    CHECK(member == segs[i]);
    SegmentHeader h;
    std::vector<DecodedBlock> blocks;
    REQUIRE(DecodeSegment(member, &h, &blocks).ok());
    CHECK(blocks.size() == 3);
  }
  // Every byte of header, index and trailer is covered (a member's bytes
  // are covered by the member's own hashes).
  const size_t index_at = ix.members.back().offset + ix.members.back().length;
  for (size_t at : {size_t(3), size_t(20), index_at + 1, index_at + 60, pack.size() - 20, pack.size() - 1}) {
    std::string bad = pack;
    bad[at] ^= 0x10;
    PackIndex out;
    INFO("byte " << at);
    CHECK(DecodePack(bad, &out).code() == Code::kCorruption);
  }
  PackIndex out;
  CHECK(DecodePack(pack.substr(0, pack.size() - 5), &out).code() == Code::kCorruption);
  PackMemberEntry nameless;
  nameless.generation = gen;
  CHECK(b.Add(nameless, segs[0]).code() == Code::kInvalidArgument);
}

TEST_CASE("pack index: one ranged read of exactly the index found from the key", "[pack]") {
  test::TempDir dir;
  auto store = std::make_shared<test::FaultStore>(NewFileStore("/"));
  const std::string gen = Hex16(NewGenerationNumber(1767225600000));
  const std::string seg = MakeSegment(gen, 1, 1);
  for (int members : {5, 2000}) {
    PackBuilder b(1767225600000);
    for (int i = 0; i < members; i++) {
      PackMemberEntry e;
      e.name = std::string(100, 'n') + std::to_string(i);  // 2000 of them: a ~300 KiB index
      e.generation = gen;
      e.first_txid = e.last_txid = 1;
      REQUIRE(b.Add(e, seg).ok());
    }
    uint64_t index_offset = 0;
    const std::string pack = b.Finish(&index_offset);
    const std::string key = PackKey((dir / "packs/").substr(1), 1767225600000 + members, index_offset);
    REQUIRE(store->Put(key, pack).ok());
    const uint64_t gets = store->calls(test::StoreOp::kGet);
    PackIndex ix;
    REQUIRE(ReadPackIndex(store.get(), key, pack.size(), &ix).ok());
    CHECK(ix.members.size() == size_t(members));
    CHECK(ix.members.back().name == std::string(100, 'n') + std::to_string(members - 1));
    CHECK(store->calls(test::StoreOp::kGet) - gets == 1);
  }
}

namespace {

// `n` databases under one replica root with packing on, each written on
// the application's own connection with SQLite's defaults (autocheckpoint
// on); what each held after each txid it reported durable.
struct PackedFleet {
  test::TempDir dir;
  std::string root = dir.url("replicas");
  std::shared_ptr<test::FaultStore> store = std::make_shared<test::FaultStore>(NewFileStore("/"));
  std::vector<std::string> dbs;
  std::vector<std::unique_ptr<test::Writer>> writers;
  std::unique_ptr<Replicator> r;
  std::map<std::pair<int, uint64_t>, std::string> states;  // (database, txid) -> content
  std::mt19937 rng{11};
  int commits = 0;
  test::LogCapture log;

  // `s3_root`: replicate there (s3://bucket/prefix?query) instead of the
  // local directory through `store`.
  // `options_of`: database i is added with these options (else the
  // defaults).
  PackedFleet(int n, int64_t window_ms, int64_t unpack_ms, const std::string& s3_root = "",
              const std::function<void(ReplicatorOptions&)>& tweak = nullptr,
              const std::function<DatabaseOptions(const ReplicatorOptions&, int)>& options_of = nullptr) {
    if (!s3_root.empty()) root = s3_root;
    for (int i = 0; i < n; i++) {
      dbs.push_back(dir / ("t" + std::to_string(i) + ".db"));
      writers.push_back(std::make_unique<test::Writer>(dbs.back(), /*autocheckpoint=*/1000));
      writers.back()->Exec("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, n INTEGER, data BLOB)");
      writers.back()->Exec("CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB)");
      test::MutateVaried(*writers.back(), rng, commits++);
    }
    ReplicatorOptions o;
    o.replica_url = root;
    o.state_dir = dir / "state";
    o.logger = log.Logger();
    if (s3_root.empty())
      o.store_factory = [this](const std::string&, std::shared_ptr<ObjectStore>* out) {
        *out = store;
        return Status::OK();
      };
    o.defaults.poll_interval_ms = 0;
    o.defaults.pack_window_ms = window_ms;
    o.defaults.pack_unpack_ms = unpack_ms;
    if (tweak) tweak(o);
    REQUIRE(Replicator::Open(o, &r).ok());
    for (size_t i = 0; i < dbs.size(); i++) REQUIRE((options_of ? r->Add(dbs[i], options_of(o, int(i))) : r->Add(dbs[i])).ok());
  }
  std::string url(int i) const {
    const size_t q = root.find('?');
    const std::string name = "/t" + std::to_string(i);
    return q == std::string::npos ? root + name : root.substr(0, q) + name + root.substr(q);
  }
  std::string pack_dir() const { return dir / "replicas/.replite-packs"; }
  // One transaction on each database, then each waited for; records states.
  void Round() {
    for (size_t i = 0; i < dbs.size(); i++) {
      test::MutateVaried(*writers[i], rng, commits++);
      REQUIRE(r->Notify(dbs[i]).ok());
    }
    for (size_t i = 0; i < dbs.size(); i++) {
      uint64_t txid = 0;
      Status s = r->WaitDurable(dbs[i], 20000, &txid);
      INFO(s.ToString());
      REQUIRE(s.ok());
      states[{int(i), txid}] = test::DumpContent(dbs[i]);
    }
  }
  void CheckEveryState(const std::string& what) {
    int n = 0;
    for (const auto& [k, content] : states) {
      INFO(what << ": database " << k.first << " txid " << k.second);
      CHECK(test::RestoreContent(url(k.first), dir / ("out-" + std::to_string(n++)), k.second) == content);
    }
  }
};

}  // namespace

TEST_CASE("packing: databases share packs and every transaction restores exactly from them", "[pack]") {
  PackedFleet f(8, 100, 10 * 60 * 1000);
  for (int round = 0; round < 6; round++) f.Round();
  const std::vector<std::string> files = FilesUnder(f.dir / "replicas");
  const size_t packs = CountSuffix(files, ".pack");
  INFO(f.log.Lines().size() << " log lines");
  CHECK(packs >= 1);
  CHECK(CountSuffix(files, "/segments/") == 0);  // every segment is in a pack until unpacked
  const std::string metrics = f.r->Metrics();
  const double members = test::MetricSum(metrics, "replite_pack_members_total");
  const double stored = test::MetricSum(metrics, "replite_packs_stored_total");
  CHECK(members >= 5 * 8);  // (the first round is in the first snapshots)
  CHECK(stored == double(packs));
  CHECK(stored * 2 <= members);  // several databases per PUT
  // Restores read the members out of the packs while the replicator runs.
  f.CheckEveryState("from packs");
  // ... and of the packs only their own members and the packs' index tails.
  {
    auto counting = std::make_shared<ByteCountingStore>(NewFileStore("/"));
    RestoreOptions ro;
    ro.store_factory = [&](const std::string&, std::shared_ptr<ObjectStore>* out) {
      *out = counting;
      return Status::OK();
    };
    REQUIRE(Restore(f.url(0), f.dir / "counted", ro).ok());
    uint64_t all_packs = 0, own_members = 0;
    for (const auto& fl : files)
      if (fl.find(".pack") != std::string::npos) all_packs += std::filesystem::file_size(fl);
    PackIndexCache cache;
    std::vector<ObjectRef> members;
    REQUIRE(cache.Members(f.store.get(), f.url(0).substr(std::string("file:///").size()), &members).ok());
    for (const auto& m : members) own_members += m.size;
    WARN("restore of one of 8 databases read " << counting->pack_bytes << " bytes of packs (its " << members.size()
         << " members: " << own_members << " bytes; all packs: " << all_packs << " bytes in " << packs << ")");
    uint64_t index_bytes = 0;
    for (const auto& fl : files) {
      int64_t created;
      uint64_t at;
      const std::string key = fl.substr(1);
      if (ParsePackKey(key.substr(0, key.rfind('/') + 1), key, &created, &at))
        index_bytes += std::filesystem::file_size(fl) - at;
    }
    CHECK(counting->pack_bytes == own_members + index_bytes);  // nothing of the other members
  }
  // Close stores what is open and moves every member out of the packs.
  REQUIRE(f.r->Close().ok());
  const std::vector<std::string> after = FilesUnder(f.dir / "replicas");
  CHECK(CountSuffix(after, ".pack") == 0);
  CHECK(CountSuffix(after, "/segments/") >= 8);
  f.CheckEveryState("after unpacking");
}

// Past their memory budget (memory_cap / 8, at least 4 pack_max_bytes) the
// stored packs wait in state_dir/unpack: restores still read them from the
// store, unpacking reads the local copies, and nothing is left behind.
TEST_CASE("packing: packs past the memory budget wait in local copies and restore exactly", "[pack]") {
  PackedFleet f(8, 100, 10 * 60 * 1000, "", [](ReplicatorOptions& o) {
    o.defaults.pack_max_bytes = 64 << 10;
    o.memory_cap = 1 << 20;  // unpack budget 256 KiB
  });
  const std::string unpack_dir = f.dir / "state/unpack";
  // A copy a killed process left (its pid is gone): removed by the next Open.
  {
    test::TempDir other;
    std::unique_ptr<Replicator> r;
    ReplicatorOptions o;
    o.state_dir = other / "state";
    REQUIRE(Replicator::Open(o, &r).ok());
    r.reset();
    const std::string dead = other / "state/unpack/pack.tmp-999999999-1-abcdef";
    REQUIRE(WriteFileAtomic(dead, "left").ok());
    REQUIRE(Replicator::Open(o, &r).ok());
    CHECK(!FileExists(dead));
  }
  size_t rounds = 0;
  while (FilesUnder(unpack_dir).size() < 3 && rounds < 60) {
    f.Round();
    rounds++;
  }
  INFO(rounds << " rounds");
  REQUIRE(FilesUnder(unpack_dir).size() >= 3);
  f.CheckEveryState("from packs, some waiting in local copies");
  REQUIRE(f.r->Close().ok());
  CHECK(FilesUnder(unpack_dir).empty());
  const std::vector<std::string> after = FilesUnder(f.dir / "replicas");
  CHECK(CountSuffix(after, ".pack") == 0);
  f.CheckEveryState("after unpacking");
}

// On a local directory store (file://, the built-in store) a stored pack
// read back costs what a local copy would: none is written (it was a second
// write of every pack byte to the same disk), and past the memory budget
// unpacking and restores read the store's own.
TEST_CASE("packing: a local directory store gets no local copies of its packs and restores exactly", "[pack]") {
  PackedFleet f(8, 100, 10 * 60 * 1000, "", [](ReplicatorOptions& o) {
    o.store_factory = nullptr;  // the built-in file:// store
    o.defaults.pack_max_bytes = 64 << 10;
    o.memory_cap = 1 << 20;  // unpack budget 256 KiB
  });
  const std::string unpack_dir = f.dir / "state/unpack";
  auto pack_bytes = [&] {
    uint64_t n = 0;
    for (const auto& p : FilesUnder(f.pack_dir()))
      if (p.find(".pack") != std::string::npos) n += std::filesystem::file_size(p);
    return n;
  };
  size_t rounds = 0;
  while (pack_bytes() < (1u << 20) && rounds < 80) {
    f.Round();
    rounds++;
    REQUIRE(FilesUnder(unpack_dir).empty());
  }
  INFO(rounds << " rounds, " << pack_bytes() << " bytes of packs");
  REQUIRE(pack_bytes() >= (1u << 20));  // four times the budget waits
  f.CheckEveryState("from packs past the memory budget");
  REQUIRE(f.r->Close().ok());
  CHECK(FilesUnder(unpack_dir).empty());
  CHECK(CountSuffix(FilesUnder(f.dir / "replicas"), ".pack") == 0);
  f.CheckEveryState("after unpacking");
}

TEST_CASE("packing: WaitDurable answers once the pack is stored and a failed pack is retried", "[pack]") {
  PackedFleet f(3, 50, 10 * 60 * 1000);
  f.Round();
  DatabaseStatus before;
  REQUIRE(f.r->GetStatus(f.dbs[0], &before).ok());
  f.store->FailOp(test::StoreOp::kPut, Code::kUnavailable);
  test::MutateVaried(*f.writers[0], f.rng, f.commits++);
  const std::string pending = test::DumpContent(f.dbs[0]);
  uint64_t txid = 0;
  CHECK(!f.r->WaitDurable(f.dbs[0], 1500, &txid).ok());
  DatabaseStatus during;
  REQUIRE(f.r->GetStatus(f.dbs[0], &during).ok());
  CHECK(during.durable_txid == before.durable_txid);  // not durable while its pack is not stored
  f.store->ClearOp(test::StoreOp::kPut);
  Status s = f.r->WaitDurable(f.dbs[0], 20000, &txid);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(txid > before.durable_txid);
  CHECK(test::RestoreContent(f.url(0), f.dir / "out", txid) == pending);
  f.states[{0, txid}] = pending;
  f.Round();
  REQUIRE(f.r->Close().ok());
  f.CheckEveryState("after a failed pack");
}

TEST_CASE("packing: packs another process left are moved into each database's own objects", "[pack]") {
  test::TempDir dir;
  auto store = std::make_shared<test::FaultStore>(NewFileStore("/"));
  const std::string root = (dir / "replicas").substr(1);
  const std::string gen = Hex16(NewGenerationNumber(1767225600000));
  int64_t now = 1767225600000;
  PackerConfig pc;
  pc.pack_dir = PackDirOf(root + "/a");
  std::vector<std::string> stored_keys;
  auto a = std::make_unique<Packer>(
      store, pc, [&](std::vector<PackMember>&, const std::string& k, uint64_t) { stored_keys.push_back(k); },
      [&] { return now; });
  // Database a: txids 1-2, 3, 4-6 over two packs (and 3 again, captured
  // twice after a crash); database b: 1-4 then 7 (a gap: 5-6 elsewhere).
  auto add = [&](const std::string& db, uint64_t first, uint64_t last) {
    PackMember m;
    m.db_prefix = root + "/" + db;
    m.segment = MakeSegment(gen, first, last, &m.header);
    REQUIRE(a->Add(std::move(m)) != Packer::AddResult::kRefused);
  };
  add("a", 1, 2);
  add("b", 1, 4);
  add("a", 3, 3);
  REQUIRE(a->Flush(true).ok());
  add("a", 3, 3);
  add("a", 4, 6);
  add("b", 7, 7);
  REQUIRE(a->Flush(true).ok());
  REQUIRE(stored_keys.size() == 2);
  a.reset();  // the process is gone before unpacking
  auto b = std::make_unique<Packer>(
      store, pc, [](std::vector<PackMember>&, const std::string&, uint64_t) {}, [&] { return now; });
  UnpackStats us;
  // Too young: it may be a live process's.
  REQUIRE(b->Unpack(false, 60 * 1000, &us).ok());
  CHECK(us.foreign_packs == 0);
  now += 61 * 1000;
  std::vector<std::string> bodies(2);
  for (int i = 0; i < 2; i++) REQUIRE(store->Get(stored_keys[i], &bodies[i]).ok());
  REQUIRE(b->Unpack(false, 60 * 1000, &us).ok());
  CHECK(us.foreign_packs == 2);
  CHECK(us.packs == 2);
  CHECK(us.objects_written == 3);
  for (const auto& k : stored_keys) {
    std::string got;
    CHECK(store->Get(k, &got).code() == Code::kNotFound);
  }
  auto check = [&](const std::string& db, uint64_t first, uint64_t last) {
    std::string obj;
    INFO(db << " " << first << "-" << last);
    REQUIRE(store->Get(SegmentKey(root + "/" + db, gen, first, last), &obj).ok());
    SegmentHeader h;
    std::vector<DecodedBlock> blocks;
    REQUIRE(DecodeSegment(obj, &h, &blocks).ok());
    CHECK(h.first_txid == first);
    CHECK(h.last_txid == last);
    REQUIRE(blocks.size() == last - first + 1);
    for (uint64_t t = first; t <= last; t++) {
      CHECK(blocks[t - first].txid == t);  // every transaction kept: each txid a restore point
      CHECK(blocks[t - first].pages == std::string(4096, char('a' + t % 26)));
    }
  };
  check("a", 1, 6);
  check("b", 1, 4);
  check("b", 7, 7);
  // A crash after writing the objects, before deleting the packs: the next
  // run finds the objects there and deletes the packs.
  for (int i = 0; i < 2; i++) REQUIRE(store->Put(stored_keys[i], bodies[i]).ok());
  REQUIRE(b->Unpack(false, 60 * 1000, &us).ok());
  CHECK(us.objects_written == 0);
  CHECK(us.objects_existing == 3);
  CHECK(us.packs == 2);
}

// Unpacking used to read back every pack stored past unpack_bytes whole, all
// at once, before writing any object: at 1,000 commits/s the 120 s of packs
// of an unpack interval sat in memory together (6 GB max RSS at N=100,000).
// Now they wait in local files (or are read back by ranges), the databases
// are taken in passes, and a run's members are read only while its object is
// written: what is held stays within unpack_bytes, with no GET of a pack we
// stored, and each database still gets one object per unpack.
// spill_cap: the local copies' bytes at once (0: no copies, read back by ranges).
void UnpackManyPacks(uint64_t spill_cap) {
  const bool spill = spill_cap > 0;
  test::TempDir dir;
  auto counting = std::make_shared<ByteCountingStore>(NewFileStore("/"));
  auto store = std::make_shared<test::FaultStore>(counting);
  const std::string root = (dir / "replicas").substr(1);
  const std::string gen = Hex16(NewGenerationNumber(1767225600000));
  PackerConfig pc;
  pc.pack_dir = PackDirOf(root + "/a");
  pc.max_bytes = 256 << 10;    // ~60 members a pack
  pc.unpack_bytes = 1 << 20;   // 1 MiB of 24 MB waiting
  if (spill) pc.spill_dir = dir / "spill";
  if (spill) REQUIRE(MakeDirs(pc.spill_dir).ok());
  pc.spill_cap = spill_cap;
  Packer p(store, pc, [](std::vector<PackMember>&, const std::string&, uint64_t) {}, [] { return int64_t(1767225600000); });
  REQUIRE(p.run_bytes() == 64 << 10);
  constexpr int kDbs = 500, kRounds = 12;
  auto page = [](int db, uint64_t txid) {  // incompressible, and its own per database and txid
    std::mt19937_64 r(uint64_t(db) << 32 | txid);
    std::string out(4096, '\0');
    for (size_t i = 0; i < out.size(); i += 8) {
      const uint64_t v = r();
      std::memcpy(&out[i], &v, 8);
    }
    return out;
  };
  uint64_t member_bytes = 0;
  for (int round = 0; round < kRounds; round++) {
    for (int db = 0; db < kDbs; db++) {
      const uint64_t txid = uint64_t(round) + 1;
      SegmentHeader h;
      h.page_size = 4096;
      h.first_txid = h.last_txid = txid;
      h.first_ts_ms = h.last_ts_ms = int64_t(txid) * 1000;
      h.pages_before = h.pages_after = 1;
      h.generation = gen;
      StringSink sink;
      SegmentBuilder b(&sink, h);
      REQUIRE(b.Start().ok());
      REQUIRE(b.AddBlock(txid, int64_t(txid) * 1000, 1, txid * 7, kBlockTxEnd, {1}, page(db, txid)).ok());
      REQUIRE(b.Finish(h).ok());
      PackMember m;
      m.db_prefix = root + "/db" + std::to_string(db);
      m.header = h;
      m.segment = sink.buffer();
      member_bytes += m.segment.size();
      const Packer::AddResult r = p.Add(std::move(m));
      REQUIRE(r != Packer::AddResult::kRefused);
      if (r == Packer::AddResult::kAddedFull) REQUIRE(p.Flush(false).ok());
    }
  }
  REQUIRE(p.Flush(true).ok());
  REQUIRE(member_bytes > 20 * pc.unpack_bytes);
  CHECK(p.memory_bytes() <= pc.unpack_bytes);
  const bool capped = spill && spill_cap < member_bytes;
  if (spill && !capped) CHECK(p.spilled_packs() > 80);
  // The copies never pass the cap (on disk as counted), and the cap left
  // packs to read back from the store.
  CHECK(p.spilled_bytes() <= spill_cap);
  uint64_t on_disk = 0;
  if (spill)
    for (const std::string& f : FilesUnder(pc.spill_dir)) on_disk += std::filesystem::file_size(f);
  CHECK(on_disk == p.spilled_bytes());
  if (capped) CHECK(p.spilled_bytes() > spill_cap / 2);
  if (capped) CHECK(p.spilled_packs() < 80);
  const uint64_t pack_bytes_read = counting->pack_bytes;
  REQUIRE(counting->pack_bytes_at_put == UINT64_MAX);
  UnpackStats us;
  REQUIRE(p.Unpack(true, 0, &us).ok());
  INFO("passes " << us.passes << " peak " << us.peak_member_bytes << " pack bytes read "
                 << counting->pack_bytes - pack_bytes_read);
  CHECK(us.passes >= 2);
  CHECK(us.peak_member_bytes > 0);
  CHECK(us.peak_member_bytes <= pc.unpack_bytes);
  if (spill && !capped) CHECK(counting->pack_bytes == pack_bytes_read);  // its own copies: no GET
  else CHECK(counting->pack_bytes - pack_bytes_read < member_bytes + member_bytes / 4);  // members once, indexes per pass
  if (capped) CHECK(counting->pack_bytes - pack_bytes_read > member_bytes / 4);  // what did not fit: from the store
  // Before the first object is written: the indexes, and one round of runs.
  CHECK(counting->pack_bytes_at_put - pack_bytes_read <= 2 * pc.unpack_bytes);
  CHECK(us.objects_written == kDbs);  // one per database
  CHECK(p.memory_bytes() == 0);
  CHECK(p.idle());
  if (spill) CHECK(FilesUnder(pc.spill_dir).empty());
  CHECK(CountSuffix(FilesUnder(dir / "replicas"), ".pack") == 0);
  for (int db = 0; db < kDbs; db += 37) {
    std::string obj;
    REQUIRE(store->Get(SegmentKey(root + "/db" + std::to_string(db), gen, 1, kRounds), &obj).ok());
    SegmentHeader h;
    std::vector<DecodedBlock> blocks;
    REQUIRE(DecodeSegment(obj, &h, &blocks).ok());
    REQUIRE(blocks.size() == size_t(kRounds));
    for (int t = 1; t <= kRounds; t++) {
      CHECK(blocks[t - 1].txid == uint64_t(t));
      CHECK(blocks[t - 1].pages == page(db, uint64_t(t)));
    }
  }
}

TEST_CASE("packing: unpacking many packs holds no more than unpack_bytes of them (local copies)", "[pack]") {
  UnpackManyPacks(UINT64_MAX);
}

// The local copies are bounded too (ReplicatorOptions::spool_cap): past
// the cap a stored pack is read back from the store by ranges.
TEST_CASE("packing: local copies of stored packs stay within their cap and the rest are read back", "[pack]") {
  UnpackManyPacks(8 << 20);
}

TEST_CASE("packing: unpacking many packs holds no more than unpack_bytes of them (read back by ranges)", "[pack]") {
  UnpackManyPacks(0);
}

// The local copies are a cache of what the store holds (written without
// fsync, in a directory an operator may clean): one that is gone, cut short
// or damaged in its index is read from the store instead, and the unpack
// still completes.
TEST_CASE("packing: a local copy gone or cut short or damaged is read from the store", "[pack]") {
  test::TempDir dir;
  auto store = std::make_shared<test::FaultStore>(NewFileStore("/"));
  const std::string root = (dir / "replicas").substr(1);
  const std::string gen = Hex16(NewGenerationNumber(1767225600000));
  PackerConfig pc;
  pc.pack_dir = PackDirOf(root + "/a");
  pc.unpack_bytes = MakeSegment(gen, 1, 2).size() * 3 / 2;  // every stored pack (two members) past the budget
  pc.spill_dir = dir / "spill";
  REQUIRE(MakeDirs(pc.spill_dir).ok());
  Packer p(store, pc, [](std::vector<PackMember>&, const std::string&, uint64_t) {}, [] { return int64_t(1767225600000); });
  uint64_t txid = 1;
  for (int pack = 0; pack < 3; pack++) {
    for (const char* db : {"a", "b"}) {
      PackMember m;
      m.db_prefix = root + "/" + db;
      m.segment = MakeSegment(gen, txid, txid + 1, &m.header);
      REQUIRE(p.Add(std::move(m)) != Packer::AddResult::kRefused);
    }
    txid += 2;
    REQUIRE(p.Flush(true).ok());
  }
  REQUIRE(p.spilled_packs() == 3);
  std::vector<std::string> copies = FilesUnder(pc.spill_dir);
  REQUIRE(copies.size() == 3);
  std::sort(copies.begin(), copies.end());
  REQUIRE(::unlink(copies[0].c_str()) == 0);               // gone
  REQUIRE(::truncate(copies[1].c_str(), 100) == 0);        // cut short
  {
    // Damaged inside its index (a byte flipped on disk).
    std::string body;
    REQUIRE(ReadFileToString(copies[2], &body).ok());
    body[body.size() - kPackTrailerSize - 3] ^= 0x5a;
    ScopedFd fd;
    REQUIRE(OpenFile(copies[2], O_WRONLY | O_TRUNC, 0600, &fd).ok());
    REQUIRE(WriteAll(fd.get(), body.data(), body.size(), copies[2]).ok());
  }
  const uint64_t gets = store->calls(test::StoreOp::kGet);
  UnpackStats us;
  Status st = p.Unpack(true, 0, &us);
  INFO(st.ToString());
  REQUIRE(st.ok());
  CHECK(store->calls(test::StoreOp::kGet) > gets);
  CHECK(us.packs == 3);
  CHECK(us.objects_written == 2);
  CHECK(FilesUnder(pc.spill_dir).empty());
  for (const char* db : {"a", "b"}) {
    std::string obj;
    REQUIRE(store->Get(SegmentKey(root + "/" + db, gen, 1, 6), &obj).ok());
    SegmentHeader h;
    std::vector<DecodedBlock> blocks;
    REQUIRE(DecodeSegment(obj, &h, &blocks).ok());
    REQUIRE(blocks.size() == 6);
    for (uint64_t t = 1; t <= 6; t++) CHECK(blocks[t - 1].pages == std::string(4096, char('a' + t % 26)));
  }
}

// Two packs opened in the same millisecond draw their ids from 15 random
// bits: at 100 packs a second, one in ~650 collides. The pack that finds its
// id taken (another pack there, not its own earlier attempt) is stored under
// another id in the same Flush; before, the Flush failed (its databases
// reported an error until the next one).
TEST_CASE("packing: a pack whose id another pack took is stored under another at once", "[pack]") {
  class TakenOnce : public test::ForwardingStore {
   public:
    using ForwardingStore::ForwardingStore;
    Status Put(const std::string& k, const std::string& d, const PutOptions& o, std::string* e) override {
      if (k.find(".pack") != std::string::npos && !taken.exchange(true)) {
        REQUIRE(inner()->Put(k, "another writer's pack").ok());
        first_key = k;
      }
      return ForwardingStore::Put(k, d, o, e);
    }
    std::atomic<bool> taken{false};
    std::string first_key;
  };
  test::TempDir dir;
  auto store = std::make_shared<TakenOnce>(NewFileStore("/"));
  const std::string root = (dir / "replicas").substr(1);
  const std::string gen = Hex16(NewGenerationNumber(1767225600000));
  PackerConfig pc;
  pc.pack_dir = PackDirOf(root + "/a");
  std::vector<std::string> keys;
  Packer p(store, pc, [&](std::vector<PackMember>&, const std::string& k, uint64_t) { keys.push_back(k); },
           [] { return int64_t(1767225600000); });
  PackMember m;
  m.db_prefix = root + "/a";
  m.segment = MakeSegment(gen, 1, 2, &m.header);
  REQUIRE(p.Add(std::move(m)) != Packer::AddResult::kRefused);
  Status st = p.Flush(true);
  INFO(st.ToString());
  REQUIRE(st.ok());
  REQUIRE(keys.size() == 1);
  CHECK(keys[0] != store->first_key);
  std::string there;
  REQUIRE(store->Get(store->first_key, &there, 0, UINT64_MAX).ok());
  CHECK(there == "another writer's pack");  // left as it was
  PackIndex ix;
  REQUIRE(store->Get(keys[0], &there, 0, UINT64_MAX).ok());
  REQUIRE(DecodePack(there, &ix).ok());
  CHECK(ix.members.size() == 1);
  CHECK(!p.failing());
}

// The window counts from when the oldest member's change was first seen
// (a Notify waits up to sync_interval_ms before its capture), not from
// when the pack opened: commit -> durable stays within the window plus the
// store's time. The code before measured from the first Add only.
TEST_CASE("packing: the pack window counts from the oldest member's first sight", "[pack]") {
  test::TempDir dir;
  auto store = NewFileStore("/");
  const std::string root = (dir / "replicas").substr(1);
  const std::string gen = Hex16(NewGenerationNumber(1767225600000));
  PackerConfig pc;
  pc.pack_dir = PackDirOf(root + "/a");
  pc.window_ms = 1000;
  int64_t now = 1767225600000;
  int stored = 0;
  Packer p(store, pc, [&](std::vector<PackMember>& ms, const std::string&, uint64_t) { stored += int(ms.size()); },
           [&] { return now; });
  auto member = [&](const char* db, uint64_t txid, int64_t since) {
    PackMember m;
    m.db_prefix = root + "/" + db;
    m.segment = MakeSegment(gen, txid, txid, &m.header);
    m.since_ms = since;
    return m;
  };
  int64_t seal = 0;
  // Seen 50 ms before it is added: due 950 ms after the Add.
  REQUIRE(p.Add(member("a", 1, now - 50), &seal) == Packer::AddResult::kAddedFirst);
  CHECK(seal == now + 950);
  // A later member seen earlier still (a slow capture) moves the seal time.
  now += 100;
  REQUIRE(p.Add(member("b", 1, now - 400), &seal) == Packer::AddResult::kAddedFirst);
  CHECK(seal == now + 600);
  // One seen after the oldest does not.
  REQUIRE(p.Add(member("c", 1, 0), &seal) == Packer::AddResult::kAdded);
  CHECK(seal == now + 600);
  // One that fell further behind (an overloaded machine) is credited half
  // a window: packs stay that long, not one PUT per capture.
  REQUIRE(p.Add(member("d", 1, now - 5000), &seal) == Packer::AddResult::kAddedFirst);
  CHECK(seal == now + 500);
  now += 499;
  REQUIRE(p.Flush(false).ok());
  CHECK(stored == 0);
  now += 1;
  REQUIRE(p.Flush(false).ok());
  CHECK(stored == 4);
  // since_ms in the future (another clock) counts as now.
  REQUIRE(p.Add(member("a", 2, now + 5000), &seal) == Packer::AddResult::kAddedFirst);
  CHECK(seal == now + 1000);
}

// Regression: a checkpoint requested while a database's captured frames
// waited in a pack not yet stored ran at once (a capture checkpoints what
// was captured before it), so a crash then lost those frames from both the
// WAL and the store (a new generation followed, and their txids were never
// restorable).
TEST_CASE("packing: no checkpoint while the database's frames wait in a pack", "[pack]") {
  PackedFleet f(1, 50, 10 * 60 * 1000);
  f.Round();
  const double before = test::MetricSum(f.r->Metrics(), "replite_checkpoints_total");
  f.store->FailOp(test::StoreOp::kPut, Code::kUnavailable);
  test::MutateVaried(*f.writers[0], f.rng, f.commits++);
  uint64_t txid = 0;
  CHECK(!f.r->WaitDurable(f.dbs[0], 1000, &txid).ok());  // captured, in a pack the store refuses
  CHECK(!f.r->Checkpoint(f.dbs[0], false).ok());
  CHECK(test::MetricSum(f.r->Metrics(), "replite_checkpoints_total") == before);
  f.store->ClearOp(test::StoreOp::kPut);
  Status s = f.r->WaitDurable(f.dbs[0], 20000, &txid);
  INFO(s.ToString());
  REQUIRE(s.ok());
  f.states[{0, txid}] = test::DumpContent(f.dbs[0]);
  s = f.r->Checkpoint(f.dbs[0], false);
  INFO(s.ToString());
  CHECK(s.ok());
  CHECK(test::MetricSum(f.r->Metrics(), "replite_checkpoints_total") > before);
  REQUIRE(f.r->Close().ok());
  f.CheckEveryState("after the checkpoint");
}

// A capture for a pack (core/wal_capture.h, pack_member_max_bytes)
// compresses at the pack's level; a segment with more pages than a pack
// member may hold, and every capture without packing, at the database's.
TEST_CASE("packing: a pack member is compressed at the pack's level and a larger segment at the database's",
          "[pack]") {
  test::TempDir dir;
  const std::string db = dir / "app.db";
  test::Writer w(db, /*autocheckpoint=*/1000);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  CaptureRequest req;
  req.db_path = db;
  req.spool_dir = dir / "spool";
  req.now_ms = 1767225600000;
  req.new_generation = 0x0123456789abcdefull;
  CaptureResult first;
  REQUIRE(CaptureChanges(req, Position(), &first).ok());
  REQUIRE(first.has_snapshot);
  ::unlink(first.snapshot_path.c_str());
  // One commit of a few pages of hex text (what zstd's fast levels compress
  // much less than level 1).
  w.Exec("BEGIN");
  for (int i = 0; i < 60; i++) w.Exec("INSERT INTO t(v) VALUES (hex(randomblob(64)))");
  w.Exec("COMMIT");
  auto capture = [&](uint64_t member_max, int level) {
    CaptureRequest r = req;
    r.pack_member_max_bytes = member_max;
    r.pack_zstd_level = level;
    CaptureResult out;
    Status s = CaptureChanges(r, first.pos, &out);
    INFO(s.ToString());
    REQUIRE(s.ok());
    REQUIRE(out.has_segment);
    REQUIRE(out.segment_path.empty());
    return out.segment;
  };
  const std::string own = capture(0, -7);             // not packing: compression_level (1)
  const std::string fast = capture(1 << 20, -7);      // a pack member at -7
  const std::string strong = capture(1 << 20, 19);    // ... at 19
  const std::string too_big = capture(4096, -7);      // more pages than a member may hold
  CHECK(too_big == own);
  CHECK(fast.size() > own.size() * 3 / 2);
  CHECK(strong.size() < own.size());
  // The same transaction in each, page for page.
  SegmentHeader h0, h1, h2;
  std::vector<DecodedBlock> b0, b1, b2;
  REQUIRE(DecodeSegment(own, &h0, &b0).ok());
  REQUIRE(DecodeSegment(fast, &h1, &b1).ok());
  REQUIRE(DecodeSegment(strong, &h2, &b2).ok());
  REQUIRE(b0.size() == 1);
  REQUIRE(b1.size() == 1);
  REQUIRE(b2.size() == 1);
  CHECK(b0[0].pgnos.size() >= 2);
  CHECK(b1[0].pgnos == b0[0].pgnos);
  CHECK(b1[0].pages == b0[0].pages);
  CHECK(b2[0].pages == b0[0].pages);
  CHECK(h1.checksum_after == h0.checksum_after);
}

// Databases added with options that differ only in packing (or in any
// option but the few that once made the shared config's key) are packed or
// not as each asked: the second Add used to get the first one's config.
TEST_CASE("packing: per-database options that differ only in packing are each kept", "[pack]") {
  // t0 first, with the defaults (no packing): the config t1 would have shared.
  PackedFleet f(2, 0, 10 * 60 * 1000, "", nullptr, [](const ReplicatorOptions& o, int i) {
    DatabaseOptions d = o.defaults;
    if (i == 1) d.pack_window_ms = 50;
    return d;
  });
  for (int round = 0; round < 3; round++) f.Round();
  const std::vector<std::string> files = FilesUnder(f.dir / "replicas");
  CHECK(CountSuffix(files, ".pack") >= 1);
  size_t plain_segments = 0, packed_segments = 0;
  for (const auto& p : files) {
    plain_segments += p.find("/t0/") != std::string::npos && p.find("/segments/") != std::string::npos;
    packed_segments += p.find("/t1/") != std::string::npos && p.find("/segments/") != std::string::npos;
  }
  CHECK(plain_segments >= 1);   // stored per database, not packed
  CHECK(packed_segments == 0);  // in packs until unpacked
  PackIndexCache cache;
  std::vector<ObjectRef> members;
  REQUIRE(cache.Members(f.store.get(), f.url(1).substr(std::string("file:///").size()), &members).ok());
  CHECK(members.size() >= 2);
  members.clear();
  REQUIRE(cache.Members(f.store.get(), f.url(0).substr(std::string("file:///").size()), &members).ok());
  CHECK(members.empty());
  REQUIRE(f.r->Close().ok());
  f.CheckEveryState("after close");
}

TEST_CASE("packing to S3 (moto): databases share packs and restore exactly before and after unpacking", "[pack][s3]") {
  testing::MotoServer* m = test::MotoForTest();
  if (!m) return;
  REQUIRE(m->CreateBucket("replite-pack").ok());
  PackedFleet f(4, 100, 10 * 60 * 1000,
                "s3://replite-pack/tenants?endpoint=" + m->endpoint() + "&region=us-east-1&force-path-style=true");
  for (int round = 0; round < 4; round++) f.Round();
  const std::string metrics = f.r->Metrics();
  const double members = test::MetricSum(metrics, "replite_pack_members_total");
  const double stored = test::MetricSum(metrics, "replite_packs_stored_total");
  CHECK(members >= 3 * 4);
  CHECK(stored * 2 <= members);
  f.CheckEveryState("from packs on S3");
  REQUIRE(f.r->Close().ok());
  f.CheckEveryState("after unpacking on S3");
}
