// InternedDir (util/interned_dir.h) and DbSlot's path kept as an interned
// directory and a file name (core/db_slot.h).
#include <catch2/catch.hpp>

#include <string>

#include "core/db_registry.h"
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
  CHECK(s.name.view() == "t000001.db");
  CHECK(s.name.HeapBytes() == 0);
}

TEST_CASE("a file name is held inline up to 15 bytes, longer ones on the heap", "[memory]") {
  for (size_t n : {0, 1, 14, 15, 16, 17, 200}) {
    const std::string v(n, 'x');
    ShortName a(v);
    CHECK(a.view() == v);
    CHECK(a.size() == n);
    CHECK((a.HeapBytes() == 0) == (n <= 15));
    a = std::string_view("t000001.db");  // replaced: a heap block is freed (ASan)
    CHECK(a.str() == "t000001.db");
    a = v;
    CHECK(a.view() == v);
  }
  CHECK(sizeof(ShortName) == 16);
}

TEST_CASE("a counted slot lives while a reference to it does", "[memory]") {
  SlotPtr a = SlotPtr::Make();
  a->SetPath("/srv/dbs/t1.db");
  SlotPtr b = a;
  CHECK(a.use_count() == 2);
  a.reset();
  CHECK(!a);
  CHECK(b.use_count() == 1);
  CHECK(b->path() == "/srv/dbs/t1.db");
  SlotPtr c = std::move(b);
  CHECK(b == nullptr);
  CHECK(c.use_count() == 1);
  RefPtr<DbConfig> m = RefPtr<DbConfig>::Make();
  RefPtr<const DbConfig> k = m;
  RefPtr<const DbConfig> copy = RefPtr<DbConfig>::Make(*m);  // a copy starts unreferenced elsewhere
  CHECK(m.use_count() == 2);
  CHECK(copy.use_count() == 1);
}
