// [config] Issue 14 item 5: the CLI parsed numbers loosely (atoll, strtoull,
// strtod) while the C ABI was strict, so `-txid 1e3` restored txid 1,
// `-txid 12abc` txid 12, `-txid -1` txid 2^64-1, `-poll-ms abc` or `-5`
// turned polling off, `-snapshot-interval nans` or `1e30d` snapshotted after
// every commit, `-metrics-addr 127.0.0.1:99999` and `-state ""` were taken.
// Both now use lib/config/: each loose value is refused, through the CLI
// (exit 2, the flag named) and the C ABI (INVALID_ARGUMENT, the key named).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "config/options_apply.h"
#include "config/value_parse.h"
#include "replite.h"  // the C ABI
#include "replite/replite.h"
#include "test_util.h"
#include "util/file_util.h"

using namespace replite;

TEST_CASE("config: values the CLI used to take loosely are refused by the shared parser", "[config]") {
  struct Case {
    const char* key;
    const char* value;
  };
  for (const Case& c : std::vector<Case>{{"poll-interval-ms", "abc"},
                                         {"poll-interval-ms", "-5"},
                                         {"poll-interval-ms", "1.5"},
                                         {"poll-interval-ms", " 5"},
                                         {"snapshot-interval", "nans"},
                                         {"snapshot-interval", "1e30d"},
                                         {"snapshot-interval", "0s"},
                                         {"snapshot-interval", "24"},  // no unit: 24 what?
                                         {"snapshot-interval", "99999999d"},
                                         {"retention", "7"},
                                         {"retention", "-1h"},
                                         {"compaction-levels", "30s+7s"},  // not a multiple of the level below
                                         {"compaction-levels", "30s+"},
                                         {"compaction-levels", "30"},
                                         {"keep-every-txid", "1"},
                                         {"worker-threads", "0x10"},
                                         {"worker-threads", "2abc"},
                                         {"state-dir", ""},
                                         {"memory-cap", "1T"},
                                         {"malloc-arena-max", "-1"},
                                         {"malloc-arena-max", "2x"},
                                         {"pack-compression-level", "0"},
                                         {"pack-compression-level", "-8"},
                                         {"pack-compression-level", "23"},
                                         {"pack-compression-level", "- 1"}}) {
    ReplicatorOptions o;
    const ReplicatorOptions before;
    Status s = config::ApplyReplicatorOption(&o, c.key, c.value);
    INFO(c.key << "=" << c.value << " -> " << s.ToString());
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(s.message().find(std::string("\"") + c.key + "\"") != std::string::npos);
    CHECK(s.message().find(" is not ") != std::string::npos);  // the fix: the form it takes
    CHECK(o.defaults.poll_interval_ms == before.defaults.poll_interval_ms);
    CHECK(o.defaults.snapshot_interval_ms == before.defaults.snapshot_interval_ms);
    CHECK(o.state_dir == before.state_dir);
  }
  for (const char* v : {"1e3", "12abc", "-1", "0", "", "18446744073709551616", "+5"}) {
    RestoreOptions o;
    Status s = config::ApplyRestoreOption(&o, "txid", v, "-txid");
    INFO(v << " -> " << s.ToString());
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(s.message().find("\"-txid\"") != std::string::npos);
    CHECK(o.txid == 0);
  }
  for (const char* v : {"127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1", "127.0.0.1:80x", "localhost:9090", "1.2.3:80"}) {
    std::string out;
    Status s = config::ParseAddress("-metrics-addr", v, &out);
    INFO(v << " -> " << s.ToString());
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(s.message().find("-metrics-addr") != std::string::npos);
  }
  // What is right is taken, with the same meaning everywhere.
  ReplicatorOptions o;
  REQUIRE(config::ApplyReplicatorOption(&o, "poll-interval-ms", "250", "-poll-ms").ok());
  CHECK(o.defaults.poll_interval_ms == 250);
  REQUIRE(config::ApplyReplicatorOption(&o, "poll-interval-ms", "2s").ok());
  CHECK(o.defaults.poll_interval_ms == 2000);
  REQUIRE(config::ApplyReplicatorOption(&o, "snapshot-interval", "90m").ok());
  CHECK(o.defaults.snapshot_interval_ms == 90 * 60 * 1000);
  REQUIRE(config::ApplyReplicatorOption(&o, "retention", "0s").ok());
  CHECK(o.defaults.retention_ms == 0);
  CHECK(o.malloc_arena_max == 0);  // malloc left as it is unless asked
  REQUIRE(config::ApplyReplicatorOption(&o, "malloc-arena-max", "2").ok());
  CHECK(o.malloc_arena_max == 2);
  CHECK(o.defaults.compaction_levels_ms == std::vector<int64_t>{10000, 60000, 600000, 3600000});
  REQUIRE(config::ApplyReplicatorOption(&o, "compaction-levels", "1m+10m").ok());
  CHECK(o.defaults.compaction_levels_ms == std::vector<int64_t>{60000, 600000});
  REQUIRE(config::ApplyReplicatorOption(&o, "compaction-levels", "off").ok());
  CHECK(o.defaults.compaction_levels_ms.empty());
  REQUIRE(config::ApplyReplicatorOption(&o, "keep-every-txid", "2h").ok());
  CHECK(o.defaults.keep_every_txid_ms == 2 * 3600 * 1000);
  CHECK(o.defaults.pack_compression_level == -1);
  REQUIRE(config::ApplyReplicatorOption(&o, "pack-compression-level", "-5").ok());
  CHECK(o.defaults.pack_compression_level == -5);
  REQUIRE(config::ApplyReplicatorOption(&o, "pack-compression-level", "3").ok());
  CHECK(o.defaults.pack_compression_level == 3);
  RestoreOptions r;
  REQUIRE(config::ApplyRestoreOption(&r, "txid", "1000").ok());
  CHECK(r.txid == 1000);
  std::string addr;
  REQUIRE(config::ParseAddress("-metrics-addr", ":9090", &addr).ok());
  CHECK(addr == "127.0.0.1:9090");
}

TEST_CASE("config: the CLI refuses loose flag values with exit 2 naming the flag", "[config][cli]") {
  test::TempDir dir;
  const std::string cli = REPLITE_CLI_PATH, db = dir / "app.db", url = dir.url("replica");
  {
    test::Writer w(db);
    w.Exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
  }
  std::string out;
  // A replica with txids 1..2, so that a loosely parsed -txid would restore.
  REQUIRE(test::Shell("'" + cli + "' replicate -once -state '" + dir / "state" + "' '" + db + "' '" + url + "'", &out) ==
          0);
  struct Case {
    std::vector<std::string> args;
    const char* flag;
  };
  const std::string o = dir / "out.db";
  for (const Case& c : std::vector<Case>{
           {{"restore", "-o", o, "-txid", "1e3", url}, "-txid"},
           {{"restore", "-o", o, "-txid", "12abc", url}, "-txid"},
           {{"restore", "-o", o, "-txid", "-1", url}, "-txid"},
           {{"restore", "-o", o, "-txid", "1", "-timestamp", "yesterday", url}, "-timestamp"},
           {{"restore", "-o", "", url}, "-o"},
           {{"replicate", "-once", "-state", dir / "state", "-poll-ms", "abc", db, url}, "-poll-ms"},
           {{"replicate", "-once", "-state", dir / "state", "-poll-ms", "-5", db, url}, "-poll-ms"},
           {{"replicate", "-once", "-state", dir / "state", "-snapshot-interval", "nans", db, url}, "-snapshot-interval"},
           {{"replicate", "-once", "-state", dir / "state", "-snapshot-interval", "1e30d", db, url}, "-snapshot-interval"},
           {{"replicate", "-once", "-state", dir / "state", "-retention", "1.5h", db, url}, "-retention"},
           {{"replicate", "-once", "-state", dir / "state", "-workers", "many", db, url}, "-workers"},
           {{"replicate", "-once", "-state", dir / "state", "-malloc-arena-max", "-2", db, url}, "-malloc-arena-max"},
           {{"replicate", "-once", "-state", dir / "state", "-pack-level", "-9", db, url}, "-pack-level"},
           {{"replicate", "-once", "-state", dir / "state", "-metrics-addr", "127.0.0.1:99999", db, url}, "-metrics-addr"},
           {{"replicate", "-once", "-state", "", db, url}, "-state"},
       }) {
    std::string cmd = "'" + cli + "'";
    for (const auto& a : c.args) cmd += " '" + a + "'";
    const int rc = test::Shell(cmd, &out);
    INFO(cmd << "\n" << out);
    CHECK(rc == 2);
    CHECK(out.find(std::string("option \"") + c.flag + "\"") != std::string::npos);
    CHECK(out.find(" is not ") != std::string::npos);
    CHECK_FALSE(FileExists(o));
  }
}

TEST_CASE("config: the C ABI refuses the same loose values", "[config][capi]") {
  test::TempDir dir;
  replite_options* o = replite_options_create();
  char* err = nullptr;
  for (auto [k, v] : std::vector<std::pair<const char*, const char*>>{{"poll-interval-ms", "abc"},
                                                                      {"poll-interval-ms", "-5"},
                                                                      {"snapshot-interval", "nans"},
                                                                      {"snapshot-interval", "1e30d"},
                                                                      {"retention", "24"},
                                                                      {"state-dir", ""}}) {
    CHECK(replite_options_set(o, k, v, &err) == REPLITE_ERR_INVALID_ARGUMENT);
    INFO(k << "=" << v << " -> " << (err ? err : "(no message)"));
    CHECK((err && std::string(err).find(std::string("\"") + k + "\"") != std::string::npos));
    replite_free(err);
    err = nullptr;
  }
  replite_options_destroy(o);
  for (const char* v : {"txid=1e3", "txid=12abc", "txid=-1"}) {
    CHECK(replite_restore(dir.url("r").c_str(), (dir / "out.db").c_str(), v, nullptr, nullptr, &err) ==
          REPLITE_ERR_INVALID_ARGUMENT);
    INFO(v << " -> " << (err ? err : "(no message)"));
    CHECK((err && std::string(err).find("\"txid\"") != std::string::npos));
    replite_free(err);
    err = nullptr;
  }
}
