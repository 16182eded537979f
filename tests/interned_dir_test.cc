// InternedDir (util/interned_dir.h) and DbSlot's path kept as an interned
// directory and a file name (core/db_slot.h).
#include <catch2/catch.hpp>

#include <string>

#include "core/db_slot.h"
#include "util/interned_dir.h"

using namespace replite;

TEST_CASE("interned directories are shared while used and freed after", "[memory]") {
  {  // the table's buckets grow to hold 3 names (and do not shrink)
    InternedDir x("/x"), y("/y"), z("/z");
  }
  const uint64_t before = InternedDir::HeapBytes();
  {
    InternedDir a("/srv/tenants/some/long/directory/name");
    InternedDir b("/srv/tenants/some/long/directory/name");
    CHECK(&a.str() == &b.str());
    CHECK(a.str() == "/srv/tenants/some/long/directory/name");
    InternedDir c("/srv/other");
    CHECK(&c.str() != &a.str());
    const uint64_t two = InternedDir::HeapBytes();
    CHECK(two > before);
    InternedDir moved(std::move(a));
    CHECK(moved.str() == b.str());
    CHECK(a.str().empty());
    a = std::move(c);  // a now names /srv/other; c is empty
    CHECK(a.str() == "/srv/other");
    CHECK(c.str().empty());
    CHECK(InternedDir::HeapBytes() == two);
  }
  CHECK(InternedDir::HeapBytes() == before);
}

TEST_CASE("a slot's path is its directory and its file name", "[memory]") {
  for (const std::string p : {"/srv/dbs/t000001.db", "/a.db", "/srv/dbs/a-name-longer-than-fifteen-bytes.sqlite"}) {
    DbSlot s;
    s.SetPath(p);
    CHECK(s.path() == p);
    CHECK(s.PathIs(p));
    CHECK_FALSE(s.PathIs(p + "x"));
    CHECK_FALSE(s.PathIs(p.substr(1)));
    CHECK_FALSE(s.PathIs("/srv/dbx/t000001.db"));
  }
  DbSlot s;
  s.SetPath("/srv/dbs/t000001.db");
  CHECK_FALSE(s.PathIs("/srv/dbs_t000001.db"));  // the separator is checked
  CHECK(s.name == "t000001.db");
}
