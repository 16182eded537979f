// FlatIdTable (util/flat_id_table.h) against std::unordered_multimap under
// random inserts and erases, with colliding hashes.
#include <catch2/catch.hpp>

#include <random>
#include <unordered_map>

#include "util/flat_id_table.h"

using namespace replite;

TEST_CASE("FlatIdTable finds what a multimap finds after random inserts and erases", "[memory]") {
  for (uint32_t hash_range : {7u, 1000u, 0xffffffffu}) {  // many collisions, some, few
    FlatIdTable t;
    std::unordered_multimap<uint32_t, uint32_t> ref;  // hash -> id
    std::vector<std::pair<uint32_t, uint32_t>> live;
    std::mt19937 rng(hash_range);
    uint32_t next_id = 0;
    for (int step = 0; step < 20000; step++) {
      if (live.empty() || rng() % 3 != 0) {
        const uint32_t h = rng() % hash_range, id = next_id++;
        t.Insert(h, id);
        ref.emplace(h, id);
        live.push_back({h, id});
      } else {
        const size_t k = rng() % live.size();
        const auto [h, id] = live[k];
        REQUIRE(t.Erase(h, id));
        for (auto [it, end] = ref.equal_range(h); it != end; ++it)
          if (it->second == id) {
            ref.erase(it);
            break;
          }
        live[k] = live.back();
        live.pop_back();
        CHECK_FALSE(t.Erase(h, id));
      }
      if (step % 97 == 0) {
        REQUIRE(t.size() == ref.size());
        for (const auto& [h, id] : live) {
          const uint32_t want = id;
          REQUIRE(t.Find(h, [&](uint32_t x) { return x == want; }) == id);
        }
      }
    }
    CHECK(t.Find(uint32_t(hash_range + 1), [](uint32_t) { return true; }) == FlatIdTable::kNone);
    CHECK(t.HeapBytes() <= MallocChunk(live.size() * 8 * 4 / 3 * 2 + 16 * 8));
  }
}
