#include "test_util.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/wal_capture.h"
#include "azurite_server.h"
#include "sshd_server.h"
#include "moto_server.h"
#include "replite/replite.h"
#include "store/replica_url.h"
#include "util/coding.h"
#include "wal/wal_format.h"

extern char** environ;

namespace replite::test {

std::unique_ptr<Replicator> OpenManual(const TempDir& dir, const std::string& url) {
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.defaults.replica_url = url;
  o.defaults.poll_interval_ms = 0;
  o.logger = [](const std::string&) {};
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  return r;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/replite-test-XXXXXX";
  char* p = ::mkdtemp(tmpl.data());
  REQUIRE(p != nullptr);
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Writer::Writer(const std::string& path, int autocheckpoint, int page_size) {
  REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
  sqlite3_busy_timeout(db_, 10000);
  Exec("PRAGMA page_size=" + std::to_string(page_size));
  Exec("PRAGMA journal_mode=WAL");
  sqlite3_wal_autocheckpoint(db_, autocheckpoint);
}

Writer::~Writer() { sqlite3_close_v2(db_); }

void Writer::Exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  INFO(sql << ": " << (err ? err : ""));
  sqlite3_free(err);
  REQUIRE(rc == SQLITE_OK);
}

int Shell(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  size_t n;
  out->clear();
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

pid_t Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) == 0);
  return pid;
}

int Wait(pid_t pid) {
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int Sqlite3(const std::string& db_path, const std::string& sql, std::string* out) {
  auto quote = [](const std::string& v) {
    std::string q = "'";
    for (char c : v) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  return Shell("sqlite3 -bail -batch " + quote(db_path) + " " + quote(sql), out);
}

static std::string Query(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* st = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) return "ERROR " + std::string(sqlite3_errmsg(db));
  while (sqlite3_step(st) == SQLITE_ROW) {
    for (int i = 0; i < sqlite3_column_count(st); i++) {
      if (i) out += "|";
      switch (sqlite3_column_type(st, i)) {
        case SQLITE_NULL: out += "NULL"; break;
        case SQLITE_BLOB: {
          const unsigned char* b = static_cast<const unsigned char*>(sqlite3_column_blob(st, i));
          int n = sqlite3_column_bytes(st, i);
          uint64_t h = 1469598103934665603ull;
          for (int k = 0; k < n; k++) h = (h ^ b[k]) * 1099511628211ull;
          out += "blob:" + std::to_string(n) + ":" + std::to_string(h);
          break;
        }
        default: out += reinterpret_cast<const char*>(sqlite3_column_text(st, i));
      }
    }
    out += "\n";
  }
  sqlite3_finalize(st);
  return out;
}

std::string DumpContent(const std::string& db_path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  std::string out = Query(db, "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name");
  out += Query(db, "PRAGMA user_version");
  std::string tables = Query(db, "SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
  size_t p = 0;
  while (p < tables.size()) {
    size_t e = tables.find('\n', p);
    std::string t = tables.substr(p, e - p);
    p = e + 1;
    out += "== " + t + "\n" + Query(db, "SELECT * FROM \"" + t + "\" ORDER BY 1");
  }
  sqlite3_close_v2(db);
  return out;
}

long ProcStatus(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
  return -1;
}

std::string IntegrityCheck(const std::string& db_path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  std::string r = Query(db, "PRAGMA integrity_check");
  sqlite3_close_v2(db);
  return r;
}

// One transaction of a varied workload.
void MutateVaried(Writer& w, std::mt19937& rng, int i) {
  switch (rng() % 10) {
    case 0:
    case 1:
    case 2:
      w.Exec("INSERT INTO items(name, n, data) VALUES ('item" + std::to_string(i) + "', " + std::to_string(rng() % 1000) +
             ", randomblob(" + std::to_string(rng() % 300) + "))");
      break;
    case 3:
      // Larger than a page: overflow pages.
      w.Exec("INSERT INTO blobs(data) VALUES (randomblob(" + std::to_string(5000 + rng() % 20000) + "))");
      break;
    case 4:
      w.Exec("UPDATE items SET n = n + 1, name = name || 'u' WHERE id % 7 = " + std::to_string(rng() % 7));
      break;
    case 5:
      w.Exec("DELETE FROM items WHERE id % 11 = " + std::to_string(rng() % 11));
      break;
    case 6:
      w.Exec("DELETE FROM blobs WHERE id IN (SELECT id FROM blobs ORDER BY random() LIMIT 2)");
      break;
    case 7:
      w.Exec("BEGIN; WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 50) "
             "INSERT INTO items(name, n) SELECT 'bulk', v FROM s; COMMIT");
      break;
    default:
      w.Exec("INSERT INTO items(name, n, data) VALUES ('x', 1, zeroblob(100))");
  }
  // A statement that changed no row commits no WAL frame, so it is no
  // transaction for replication either: make every step one.
  if (sqlite3_changes(w.db()) == 0) w.Exec("INSERT INTO items(name) VALUES ('filler')");
}


testing::MotoServer* MotoForTest(const std::string& secret) {
  setenv("AWS_ACCESS_KEY_ID", "AKIDREPLITETEST", 1);
  setenv("AWS_SECRET_ACCESS_KEY", secret.c_str(), 1);
  unsetenv("AWS_SESSION_TOKEN");
  unsetenv("AWS_PROFILE");
  std::string why;
  testing::MotoServer* m = testing::MotoServer::Shared(&why);
  if (!m) {
    if (testing::AllowS3Skip()) {
      WARN("SKIPPED: moto_server cannot start (REPLITE_ALLOW_S3_SKIP=1): " << why);
      return nullptr;
    }
    FAIL("moto_server cannot start (CI must not skip the S3 suite): " << why);
  }
  return m;
}

testing::AzuriteServer* AzuriteForTest() {
  std::string why;
  testing::AzuriteServer* a = testing::AzuriteServer::Shared(&why);
  if (!a) FAIL("azurite cannot start (CI must not skip the Azure suite): " << why);
  return a;
}

testing::SshdServer* SshdForTest() {
  std::string why;
  testing::SshdServer* s = testing::SshdServer::Shared(&why);
  if (!s) FAIL("sshd cannot start (CI must not skip the SFTP suite): " << why);
  return s;
}

std::string RechainWal(const std::string& wal, bool big_endian) {
  std::string b = wal;
  unsigned char* p = reinterpret_cast<unsigned char*>(b.data());
  PutBE32(p, big_endian ? kWalMagicBE : kWalMagicLE);
  uint32_t s1 = 0, s2 = 0;
  WalChecksum(big_endian, p, 24, &s1, &s2);
  PutBE32(p + 24, s1);
  PutBE32(p + 28, s2);
  const uint32_t ps = GetBE32(p + 8);
  const size_t fsz = kWalFrameHeaderSize + ps;
  for (size_t off = kWalHeaderSize; off + fsz <= b.size(); off += fsz) {
    WalChecksum(big_endian, p + off, 8, &s1, &s2);
    WalChecksum(big_endian, p + off + kWalFrameHeaderSize, ps, &s1, &s2);
    PutBE32(p + off + 16, s1);
    PutBE32(p + off + 20, s2);
  }
  return b;
}

void CheckRestore(const std::string& url, const std::string& out, const RestoreOptions& ro, uint64_t txid,
                  uint64_t checksum, const std::string& content) {
  RestoreResult rr;
  Status s = Restore(url, out, ro, &rr);
  INFO("txid " << txid << ": " << s.ToString());
  REQUIRE(s.ok());
  CHECK(rr.txid == txid);
  CHECK(rr.checksum_verified);
  CHECK(rr.checksum == checksum);
  CHECK(IntegrityCheck(out) == "ok\n");
  CHECK(DumpContent(out) == content);
}

void ReplicateVariedAndRestore(const std::string& url, const TempDir& dir, int txs, uint32_t seed, int sample_every) {
  const std::string db = dir / "app.db";
  Writer w(db);
  w.Exec("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, n INTEGER, data BLOB)");
  w.Exec("CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB)");
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.logger = [](const std::string&) {};
  o.defaults.replica_url = url;
  o.defaults.poll_interval_ms = 0;
  o.defaults.checkpoint_pages = 50;  // several checkpoints inside the run
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  REQUIRE(r->Add(db).ok());
  uint64_t txid = 0;
  REQUIRE(r->Sync(db, &txid).ok());
  std::map<uint64_t, std::pair<std::string, uint64_t>> points;  // txid -> (content, checksum)
  std::mt19937 rng(seed);
  const int vacuum_at = txs / 2;
  for (int i = 0; i < txs; i++) {
    if (i == vacuum_at) {
      w.Exec("VACUUM");
    } else {
      MutateVaried(w, rng, i);
    }
    txid++;
    const bool sample = i % sample_every == 0 || i == vacuum_at || i == txs - 1;
    if (sample) points[txid] = {DumpContent(db), LiveChecksum(db)};
    if (sample || rng() % 3 == 0) {
      uint64_t got = 0;
      REQUIRE(r->Sync(db, &got).ok());
      REQUIRE(got == txid);
    }
  }
  DatabaseStatus st;
  REQUIRE(r->GetStatus(db, &st).ok());
  CHECK(st.checkpoints > 0);
  REQUIRE(r->Close().ok());
  int n = 0;
  for (const auto& [t, p] : points) {
    RestoreOptions ro;
    ro.txid = t;
    CheckRestore(url, dir / ("r" + std::to_string(n++) + ".db"), ro, t, p.second, p.first);
  }
  RestoreResult rr;
  const std::string latest = dir / "latest.db";
  REQUIRE(Restore(url, latest, RestoreOptions(), &rr).ok());
  CHECK(rr.txid == txid);
  CHECK(IntegrityCheck(latest) == "ok\n");
  CHECK(DumpContent(latest) == points.rbegin()->second.first);
}

ReplicaUrl ParsedUrl(const std::string& url) {
  ReplicaUrl u;
  Status st = ParseReplicaUrl(url, &u);
  INFO(st.ToString());
  REQUIRE(st.ok());
  return u;
}

uint64_t LiveChecksum(const std::string& db_path) {
  uint64_t c = 0;
  uint32_t pages = 0, ps = 0;
  Status s = ComputeDatabaseChecksum(db_path, &c, &pages, &ps);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return c;
}

std::string RestoreContent(const std::string& url, const std::string& out, uint64_t txid, RestoreResult* res) {
  ::unlink(out.c_str());
  RestoreOptions ro;
  ro.txid = txid;
  RestoreResult rr;
  Status s = Restore(url, out, ro, &rr);
  INFO("restore txid " << txid << ": " << s.ToString());
  REQUIRE(s.ok());
  CHECK(IntegrityCheck(out) == "ok\n");
  if (res) *res = rr;
  return DumpContent(out);
}

double MetricSum(const std::string& text, const std::string& name) {
  double sum = 0;
  bool known = false;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + "{", 0) == 0 || line.rfind(name + " ", 0) == 0) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
      known = true;
    }
  // A declared family without samples yet is known by its TYPE line (for a
  // histogram's _count/_sum/_bucket, the base name's).
  std::string base = name;
  for (const char* sfx : {"_count", "_sum", "_bucket"}) {
    const size_t n = std::strlen(sfx);
    if (base.size() > n && base.compare(base.size() - n, n, sfx) == 0) base.resize(base.size() - n);
  }
  known |= text.find("# TYPE " + name + " ") != std::string::npos || text.find("# TYPE " + base + " ") != std::string::npos;
  INFO("metric " << name);
  if (!known) FAIL("metric " << name << " is not exported at all (renamed or removed?): a sum of 0 would prove nothing");
  return sum;
}

std::function<void(const std::string&)> LogCapture::Logger() {
  return [this](const std::string& line) {
    std::lock_guard<std::mutex> l(mu_);
    lines_.push_back(line);
  };
}

bool LogCapture::Has(const std::string& needle) const {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& line : lines_)
    if (line.find(needle) != std::string::npos) return true;
  return false;
}

std::vector<std::string> LogCapture::Lines() const {
  std::lock_guard<std::mutex> l(mu_);
  return lines_;
}

TwoGenerationReplica::TwoGenerationReplica() : db(dir / "a.db"), url(dir.url("replica")) {
  Writer w(db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  const int64_t kMin = 60 * 1000;
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.env = &env;
  o.logger = [](const std::string&) {};
  o.defaults.replica_url = url;
  o.defaults.poll_interval_ms = 0;
  o.defaults.retention_ms = retention_ms;
  std::unique_ptr<Replicator> r;
  auto open = [&] {
    REQUIRE(Replicator::Open(o, &r).ok());
    REQUIRE(r->Add(db).ok());
    REQUIRE(r->Sync(db).ok());
  };
  open();  // generation A
  w.Exec("INSERT INTO t(v) VALUES (randomblob(2000))");
  REQUIRE(r->Sync(db).ok());
  REQUIRE(r->Close().ok());
  // Frames lost while replite is stopped: generation B starts.
  w.Exec("INSERT INTO t(v) VALUES (randomblob(2000))");
  std::string out;
  REQUIRE(Sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE);", &out) == 0);
  env.Advance(10 * kMin * 1000);
  open();
  REQUIRE(ListGenerations(url, &gens).ok());
  REQUIRE(gens.size() == 2);
  env.Advance(2 * 60 * kMin * 1000);  // B's snapshot is now the restore base
  w.Exec("INSERT INTO t(v) VALUES (randomblob(2000))");
  REQUIRE(r->Sync(db).ok());
  REQUIRE(r->Close().ok());
}

}  // namespace replite::test
