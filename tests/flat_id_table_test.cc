// FlatIdTable (util/flat_id_table.h) against std::unordered_multimap under
// random inserts and erases, with colliding hashes (whole and in the 8 bits
// an entry keeps).
#include <catch2/catch.hpp>

#include <random>
#include <unordered_map>

#include "util/flat_id_table.h"

using namespace replite;

TEST_CASE("FlatIdTable finds what a multimap finds after random inserts and erases", "[memory]") {
  // many collisions, some, few; the last: hashes that differ only in their
  // top 8 bits (the tag) and share their low bits (the home)
  for (uint32_t hash_range : {7u, 1000u, 0xffffffffu, 0u}) {
    FlatIdTable t;
    std::unordered_multimap<uint32_t, uint32_t> ref;  // hash -> id
    std::vector<std::pair<uint32_t, uint32_t>> live;
    std::mt19937 rng(hash_range);
    uint32_t next_id = 0;
    std::unordered_map<uint32_t, uint32_t> hash_of_id;
    auto hash_of = [&](uint32_t id) { return hash_of_id.at(id); };
    for (int step = 0; step < (hash_range ? 20000 : 3000); step++) {
      if (live.empty() || rng() % 3 != 0) {
        const uint32_t h = hash_range ? uint32_t(rng() % hash_range) : uint32_t((rng() % 300) << 24 | 5), id = next_id++;
        hash_of_id[id] = h;
        t.Insert(h, id, hash_of);
        ref.emplace(h, id);
        live.push_back({h, id});
      } else {
        const size_t k = rng() % live.size();
        const auto [h, id] = live[k];
        REQUIRE(t.Erase(h, id, hash_of));
        for (auto [it, end] = ref.equal_range(h); it != end; ++it)
          if (it->second == id) {
            ref.erase(it);
            break;
          }
        live[k] = live.back();
        live.pop_back();
        CHECK_FALSE(t.Erase(h, id, hash_of));
        hash_of_id.erase(id);
      }
      if (step % 97 == 0) {
        REQUIRE(t.size() == ref.size());
        for (const auto& [h, id] : live) {
          const uint32_t want = id;
          REQUIRE(t.Find(h, [&](uint32_t x) { return x == want; }) == id);
        }
      }
    }
    // (the caller's match compares keys: here, the hashes themselves)
    const uint32_t absent = hash_range ? hash_range + 1 : 6;
    CHECK(t.Find(absent, [&](uint32_t x) { return hash_of_id.at(x) == absent; }) == FlatIdTable::kNone);
    CHECK(t.HeapBytes() <= MallocChunk(live.size() * 4 * 5 / 4 * 2 + 16 * 4));
  }
}
