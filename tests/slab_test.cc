// Slab (util/slab.h): cells are distinct, aligned, reused after Free, and
// hold what is written to them.
#include <catch2/catch.hpp>

#include <cstring>
#include <set>
#include <vector>

#include "util/slab.h"

using namespace replite;

TEST_CASE("a slab hands out distinct cells and reuses freed ones", "[memory]") {
  Slab slab(276);
  CHECK(slab.cell() == 280);
  std::vector<void*> cells;
  for (int i = 0; i < 10000; i++) {  // more than one mapping
    void* p = slab.Alloc();
    CHECK(reinterpret_cast<uintptr_t>(p) % 8 == 0);
    std::memset(p, i & 0xff, slab.cell());
    cells.push_back(p);
  }
  CHECK(std::set<void*>(cells.begin(), cells.end()).size() == cells.size());
  for (size_t i = 0; i < cells.size(); i++) {
    const unsigned char* b = static_cast<const unsigned char*>(cells[i]);
    REQUIRE((b[0] == (i & 0xff) && b[slab.cell() - 1] == (i & 0xff)));
  }
  const uint64_t mapped = slab.MappedBytes();
  CHECK(mapped >= cells.size() * slab.cell());
  for (size_t i = 0; i < cells.size(); i += 2) slab.Free(cells[i]);
  std::set<void*> freed;
  for (size_t i = 0; i < cells.size(); i += 2) freed.insert(cells[i]);
  for (size_t i = 0; i < cells.size(); i += 2) CHECK(freed.count(slab.Alloc()) == 1);
  CHECK(slab.MappedBytes() == mapped);  // nothing new mapped for them
}
