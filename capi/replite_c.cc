// The C ABI (capi/replite.h) over the C++ API. Its jobs: check every handle
// and argument so that misuse is an error rather than a crash, turn Status
// into (code, malloc'd message), keep exceptions inside, and render status
// as JSON. Option values are parsed by config/ (the CLI uses the same
// parser). The rules the ABI promises are written once in replite.h.
#include "replite.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/options_apply.h"
#include "config/value_parse.h"
#include "replite/replite.h"

using replite::Code;
using replite::DatabaseOptions;
using replite::DatabaseStatus;
using replite::Replicator;
using replite::ReplicatorOptions;
using replite::Status;

// The C codes are the negated C++ codes; pinned so the header cannot drift.
static_assert(REPLITE_ERR_INVALID_ARGUMENT == -int(Code::kInvalidArgument));
static_assert(REPLITE_ERR_NOT_FOUND == -int(Code::kNotFound));
static_assert(REPLITE_ERR_ALREADY_EXISTS == -int(Code::kAlreadyExists));
static_assert(REPLITE_ERR_FAILED_PRECONDITION == -int(Code::kFailedPrecondition));
static_assert(REPLITE_ERR_CORRUPTION == -int(Code::kCorruption));
static_assert(REPLITE_ERR_IO == -int(Code::kIOError));
static_assert(REPLITE_ERR_UNAVAILABLE == -int(Code::kUnavailable));
static_assert(REPLITE_ERR_PERMISSION_DENIED == -int(Code::kPermissionDenied));
static_assert(REPLITE_ERR_UNAUTHENTICATED == -int(Code::kUnauthenticated));
static_assert(REPLITE_ERR_RESOURCE_EXHAUSTED == -int(Code::kResourceExhausted));
static_assert(REPLITE_ERR_CANCELLED == -int(Code::kCancelled));
static_assert(REPLITE_ERR_TIMEOUT == -int(Code::kTimeout));
static_assert(REPLITE_ERR_NOT_SUPPORTED == -int(Code::kNotSupported));
static_assert(REPLITE_ERR_INTERNAL == -int(Code::kInternal));

// The opaque handles hold only a magic number: the state lives in the
// registries below, keyed by handle address, so a stale handle is looked
// up (never dereferenced) and rejected.
struct replite_options {
  uint32_t magic;
};
struct replite_replicator {
  uint32_t magic;
};

namespace {

constexpr uint32_t kOptionsMagic = 0x52504f54;     // "RPOT"
constexpr uint32_t kReplicatorMagic = 0x52505243;  // "RPRC"
constexpr uint32_t kDeadMagic = 0xdeadbeef;

struct OptionsState {
  std::mutex mu;  // replite_options_set may race with replite_replicator_open
  ReplicatorOptions opts;
};

struct ReplicatorState {
  std::unique_ptr<Replicator> r;
  // The per-database defaults it was opened with: a Replicator does not
  // give them back, and replite_db_add with a URL / replite_db_add_with
  // start from them.
  DatabaseOptions defaults;
};

// Live handles → their state. A call takes a shared_ptr to the state under
// the lock and works on it after, so close/destroy on one thread never frees
// what another thread is using: the last reference frees it.
template <typename Handle, typename State, uint32_t kMagic>
class Registry {
 public:
  Handle* Add(std::shared_ptr<State> state) {
    auto* h = new Handle{kMagic};
    std::lock_guard<std::mutex> l(mu_);
    map_[h] = std::move(state);
    return h;
  }
  std::shared_ptr<State> Find(const Handle* h) {
    if (h == nullptr) return nullptr;
    std::lock_guard<std::mutex> l(mu_);
    auto it = map_.find(h);
    // Found in the map means not yet freed, so reading magic is safe.
    if (it == map_.end() || h->magic != kMagic) return nullptr;
    return it->second;
  }
  // Unregisters and frees the handle; returns its state (nullptr if the
  // handle was not live: a double close lands here).
  std::shared_ptr<State> Take(Handle* h) {
    if (h == nullptr) return nullptr;
    std::lock_guard<std::mutex> l(mu_);
    auto it = map_.find(h);
    if (it == map_.end() || h->magic != kMagic) return nullptr;
    std::shared_ptr<State> s = std::move(it->second);
    map_.erase(it);
    h->magic = kDeadMagic;
    delete h;
    return s;
  }

 private:
  std::mutex mu_;
  std::unordered_map<const Handle*, std::shared_ptr<State>> map_;
};

// Deliberately leaked: destroying them at exit would run Replicator
// destructors (flushes, joins) during static destruction, where other
// libraries' globals may already be gone. Close replicators before exit.
Registry<replite_options, OptionsState, kOptionsMagic>& Options() {
  static auto* r = new Registry<replite_options, OptionsState, kOptionsMagic>;
  return *r;
}
Registry<replite_replicator, ReplicatorState, kReplicatorMagic>& Replicators() {
  static auto* r = new Registry<replite_replicator, ReplicatorState, kReplicatorMagic>;
  return *r;
}

// ---- errors -----------------------------------------------------------------

int CodeOf(const Status& s) { return -int(s.code()); }

int SetError(char** errptr, const Status& s) {
  if (errptr != nullptr) {
    std::free(*errptr);
    *errptr = nullptr;
    const std::string m = s.ToString();
    char* p = static_cast<char*>(std::malloc(m.size() + 1));
    if (p != nullptr) {  // out of memory: the code still says what failed
      std::memcpy(p, m.c_str(), m.size() + 1);
      *errptr = p;
    }
  }
  return CodeOf(s);
}

int Report(char** errptr, const Status& s) { return s.ok() ? REPLITE_OK : SetError(errptr, s); }

Status BadHandle(const char* what) {
  return Status::InvalidArgument(std::string(what) + " handle is NULL, already closed/destroyed, or not a " + what);
}

Status NullArg(const char* name) { return Status::InvalidArgument(std::string(name) + " is NULL"); }

// Runs f, turning any exception into an error code: nothing may unwind into C.
template <typename F>
int Guard(char** errptr, F&& f) {
  try {
    return Report(errptr, f());
  } catch (const std::bad_alloc&) {
    return SetError(errptr, Status::ResourceExhausted("out of memory"));
  } catch (const std::exception& e) {
    return SetError(errptr, Status::Internal(std::string("unexpected exception: ") + e.what()));
  } catch (...) {
    return SetError(errptr, Status::Internal("unexpected exception"));
  }
}

char* CopyOut(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p != nullptr) std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

// Like Guard, for calls that return a malloc'd string (NULL on failure).
template <typename F>
char* GuardString(char** errptr, F&& f) {
  std::string out;
  if (Guard(errptr, [&] { return f(&out); }) != REPLITE_OK) return nullptr;
  char* p = CopyOut(out);
  if (p == nullptr) SetError(errptr, Status::ResourceExhausted("out of memory"));
  return p;
}

// ---- value parsing: config/ (shared with the CLI) ---------------------------

using replite::config::ApplyDbOption;
using replite::config::ApplyReplicatorOption;
using replite::config::ApplyRestoreOption;
using replite::config::CheckReplicaUrl;
using replite::config::Quote;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "k=v,k=v;k=v" → pairs, in order. Empty items are skipped.
Status SplitPairs(const char* text, const char* what, std::vector<std::pair<std::string, std::string>>* out) {
  if (text == nullptr) return Status::OK();
  std::string_view rest(text);
  while (!rest.empty()) {
    size_t end = rest.find_first_of(",;");
    std::string_view item = Trim(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos)
      return Status::InvalidArgument(std::string(what) + ": " + Quote(item) +
                                     " is not key=value (pairs are separated by ',' or ';')");
    out->emplace_back(std::string(Trim(item.substr(0, eq))), std::string(Trim(item.substr(eq + 1))));
  }
  return Status::OK();
}

// ---- JSON -------------------------------------------------------------------

// A JSON string literal. Database paths are bytes, not necessarily UTF-8:
// invalid sequences become U+FFFD so the output is always valid JSON.
void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(char(c));
      i++;
    } else if (c < 0x20) {
      static const char* kHex = "0123456789abcdef";
      switch (c) {
        case '\n': *out += "\\n"; break;
        case '\r': *out += "\\r"; break;
        case '\t': *out += "\\t"; break;
        case '\b': *out += "\\b"; break;
        case '\f': *out += "\\f"; break;
        default: *out += "\\u00"; out->push_back(kHex[c >> 4]); out->push_back(kHex[c & 15]);
      }
      i++;
    } else if (c < 0x80) {
      out->push_back(char(c));
      i++;
    } else {
      // Validate one UTF-8 sequence (no overlongs, no surrogates, <= U+10FFFF).
      size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
      bool ok = len != 0 && c >= 0xc2 && c <= 0xf4 && i + len <= s.size();
      uint32_t cp = ok ? (c & (0x7f >> len)) : 0;
      for (size_t k = 1; ok && k < len; k++) {
        const auto d = static_cast<unsigned char>(s[i + k]);
        ok = (d & 0xc0) == 0x80;
        cp = (cp << 6) | (d & 0x3f);
      }
      ok = ok && !(len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) &&
           !(len == 4 && (cp < 0x10000 || cp > 0x10ffff));
      if (ok) {
        out->append(s.substr(i, len));
        i += len;
      } else {
        *out += "\xef\xbf\xbd";
        i++;
      }
    }
  }
  out->push_back('"');
}

class JsonObject {
 public:
  explicit JsonObject(std::string* out) : out_(out) { out_->push_back('{'); }
  void Str(const char* k, std::string_view v) {
    Key(k);
    AppendJsonString(out_, v);
  }
  void StrOrNull(const char* k, std::string_view v) {
    if (v.empty()) Raw(k, "null");
    else Str(k, v);
  }
  void Num(const char* k, uint64_t v) { Raw(k, std::to_string(v)); }
  void Int(const char* k, int64_t v) { Raw(k, std::to_string(v)); }
  void Raw(const char* k, const std::string& json) {
    Key(k);
    *out_ += json;
  }
  void End() { out_->push_back('}'); }

 private:
  void Key(const char* k) {
    if (!first_) out_->push_back(',');
    first_ = false;
    AppendJsonString(out_, k);
    out_->push_back(':');
  }
  std::string* out_;
  bool first_ = true;
};

void AppendDatabaseJson(std::string* out, const DatabaseStatus& d) {
  JsonObject o(out);
  o.Str("path", d.path);
  o.Str("replica_url", d.replica_url);
  o.Str("generation", d.generation);
  o.Num("durable_txid", d.durable_txid);
  o.Num("local_txid", d.local_txid);
  o.Num("spooled_segments", d.spooled_segments);
  o.Int("durable_ts_ms", d.durable_ts_ms);
  if (d.durable_ts_ms > 0) o.Str("durable_time", replite::FormatRfc3339(d.durable_ts_ms));
  else o.Raw("durable_time", "null");
  o.Num("page_size", d.page_size);
  o.Num("db_pages", d.db_pages);
  o.Num("wal_frames", d.wal_frames);
  o.Int("last_sync_ms", d.last_sync_ms);
  o.Num("generations_started", d.generations_started);
  o.Num("segments_uploaded", d.segments_uploaded);
  o.Num("snapshots_uploaded", d.snapshots_uploaded);
  o.Num("bytes_uploaded", d.bytes_uploaded);
  o.Num("checkpoints", d.checkpoints);
  o.Str("metrics_group", d.metrics_group);
  o.StrOrNull("last_error", d.last_error);
  o.End();
}

// Finds the replicator or says why not; *out is the caller's reference.
Status Lookup(replite_replicator* r, std::shared_ptr<ReplicatorState>* out) {
  *out = Replicators().Find(r);
  return *out ? Status::OK() : BadHandle("replicator");
}

// The common shape of the per-database calls.
template <typename F>
int DbCall(replite_replicator* r, const char* db_path, char** errptr, F&& f) {
  return Guard(errptr, [&]() -> Status {
    std::shared_ptr<ReplicatorState> st;
    Status s = Lookup(r, &st);
    if (!s.ok()) return s;
    if (db_path == nullptr) return NullArg("db_path");
    return f(*st, std::string(db_path));
  });
}

// replite_restore and replite_restore_json: the options string parsed, then
// replite::Restore.
Status RestoreWithOptions(const char* replica_url, const char* output_path, const char* options,
                          replite_progress_fn progress, void* user, replite::RestoreResult* rr) {
  if (replica_url == nullptr) return NullArg("replica_url");
  if (output_path == nullptr) return NullArg("output_path");
  std::vector<std::pair<std::string, std::string>> pairs;
  Status s = SplitPairs(options, "restore options", &pairs);
  if (!s.ok()) return s;
  replite::RestoreOptions ro;
  for (const auto& [k, v] : pairs)
    if (!(s = ApplyRestoreOption(&ro, k, v)).ok()) return s;
  if (ro.txid != 0 && ro.timestamp_ms)
    return Status::InvalidArgument("restore options: txid and timestamp are exclusive (give one)");
  if (progress != nullptr) ro.progress = [progress, user](uint64_t done, uint64_t total) { progress(done, total, user); };
  return replite::Restore(replica_url, output_path, ro, rr);
}

// The per-database options of replite_db_add_with and replite_db_add_many
// over the replicator's defaults.
Status DbOptionsOf(const ReplicatorState& st, const char* options, DatabaseOptions* o) {
  std::vector<std::pair<std::string, std::string>> pairs;
  Status s = SplitPairs(options, "database options", &pairs);
  if (!s.ok()) return s;
  *o = st.defaults;
  for (const auto& [k, v] : pairs) {
    bool known = false;
    s = ApplyDbOption(o, k, v, &known);
    if (!s.ok()) return s;
    if (!known)
      return Status::InvalidArgument("unknown database option " + Quote(k) + " (known: " + replite::config::DbOptionKeys() + ")");
  }
  return Status::OK();
}

}  // namespace

extern "C" {

REPLITE_EXPORT const char* replite_error_name(int code) {
  if (code > 0 || code < REPLITE_ERR_INTERNAL) return "Unknown";
  return replite::CodeName(Code(-code));
}

REPLITE_EXPORT int replite_error_retryable(int code) {
  return code == REPLITE_ERR_IO || code == REPLITE_ERR_UNAVAILABLE || code == REPLITE_ERR_TIMEOUT;
}

REPLITE_EXPORT const char* replite_version(void) { return replite::Version(); }

REPLITE_EXPORT void replite_free(void* p) { std::free(p); }

// ---- options ----

REPLITE_EXPORT replite_options* replite_options_create(void) {
  try {
    return Options().Add(std::make_shared<OptionsState>());
  } catch (...) {
    return nullptr;  // out of memory: documented as NULL
  }
}

REPLITE_EXPORT void replite_options_destroy(replite_options* options) {
  try {
    Options().Take(options);  // NULL or stale: nothing to do
  } catch (...) {
  }
}

REPLITE_EXPORT int replite_options_set(replite_options* options, const char* key, const char* value, char** errptr) {
  return Guard(errptr, [&]() -> Status {
    auto st = Options().Find(options);
    if (!st) return BadHandle("options");
    if (key == nullptr) return NullArg("key");
    if (value == nullptr) return NullArg("value");
    std::lock_guard<std::mutex> l(st->mu);
    ReplicatorOptions copy = st->opts;  // all or nothing
    Status s = ApplyReplicatorOption(&copy, key, value);
    if (s.ok()) st->opts = std::move(copy);
    return s;
  });
}

REPLITE_EXPORT int replite_options_set_logger(replite_options* options, replite_log_fn fn, void* user,
                                              char** errptr) {
  return Guard(errptr, [&]() -> Status {
    auto st = Options().Find(options);
    if (!st) return BadHandle("options");
    std::lock_guard<std::mutex> l(st->mu);
    if (fn == nullptr) st->opts.logger = nullptr;
    else st->opts.logger = [fn, user](const std::string& line) { fn(line.c_str(), user); };
    return Status::OK();
  });
}

REPLITE_EXPORT int replite_options_set_on_durable(replite_options* options, replite_durable_fn fn, void* user,
                                                  char** errptr) {
  return Guard(errptr, [&]() -> Status {
    auto st = Options().Find(options);
    if (!st) return BadHandle("options");
    std::lock_guard<std::mutex> l(st->mu);
    if (fn == nullptr) st->opts.on_durable = nullptr;
    else st->opts.on_durable = [fn, user](const std::string& path, uint64_t txid) { fn(path.c_str(), txid, user); };
    return Status::OK();
  });
}

// ---- replicator ----

REPLITE_EXPORT int replite_replicator_open(const replite_options* options, replite_replicator** out, char** errptr) {
  if (out != nullptr) *out = nullptr;
  return Guard(errptr, [&]() -> Status {
    if (out == nullptr) return NullArg("out");
    auto opt = Options().Find(options);
    if (!opt) return BadHandle("options");
    ReplicatorOptions ro;
    {
      std::lock_guard<std::mutex> l(opt->mu);
      ro = opt->opts;
    }
    auto st = std::make_shared<ReplicatorState>();
    st->defaults = ro.defaults;
    Status s = Replicator::Open(ro, &st->r);
    if (!s.ok()) return s;
    *out = Replicators().Add(std::move(st));
    return Status::OK();
  });
}

REPLITE_EXPORT int replite_replicator_close(replite_replicator* r, char** errptr) {
  return Guard(errptr, [&]() -> Status {
    // Unregistered first: from here on new calls with this handle fail;
    // calls already inside keep the state alive until they return (the
    // Replicator answers them with Cancelled once closed).
    std::shared_ptr<ReplicatorState> st = Replicators().Take(r);
    if (!st) return BadHandle("replicator");
    return st->r->Close();
  });
}

REPLITE_EXPORT void replite_replicator_destroy(replite_replicator* r) { replite_replicator_close(r, nullptr); }

// ---- databases ----

REPLITE_EXPORT int replite_db_add(replite_replicator* r, const char* db_path, const char* replica_url, char** errptr) {
  return DbCall(r, db_path, errptr, [&](ReplicatorState& st, const std::string& path) -> Status {
    if (replica_url == nullptr || *replica_url == '\0') return st.r->Add(path);
    Status s = CheckReplicaUrl("replica_url", replica_url);
    if (!s.ok()) return s;
    DatabaseOptions o = st.defaults;
    o.replica_url = replica_url;
    return st.r->Add(path, o);
  });
}

REPLITE_EXPORT int replite_db_add_with(replite_replicator* r, const char* db_path, const char* options,
                                       char** errptr) {
  return DbCall(r, db_path, errptr, [&](ReplicatorState& st, const std::string& path) -> Status {
    DatabaseOptions o;
    Status s = DbOptionsOf(st, options, &o);
    return s.ok() ? st.r->Add(path, o) : s;
  });
}

REPLITE_EXPORT int replite_db_add_many(replite_replicator* r, const char* const* db_paths, size_t n,
                                       const char* options, int* results, char** errptr) {
  return Guard(errptr, [&]() -> Status {
    std::shared_ptr<ReplicatorState> st;
    Status s = Lookup(r, &st);
    if (s.ok() && db_paths == nullptr && n > 0) s = NullArg("db_paths");
    for (size_t i = 0; s.ok() && i < n; i++)
      if (db_paths[i] == nullptr) s = Status::InvalidArgument("db_paths[" + std::to_string(i) + "] is NULL");
    DatabaseOptions o;
    if (s.ok()) s = DbOptionsOf(*st, options, &o);
    if (!s.ok()) {  // nothing added: every result is this error
      if (results != nullptr)
        for (size_t i = 0; i < n; i++) results[i] = CodeOf(s);
      return s;
    }
    const std::vector<Status> got = st->r->AddMany(std::vector<std::string>(db_paths, db_paths + n), o);
    size_t failed = 0, first = n;
    for (size_t i = 0; i < n; i++) {
      if (results != nullptr) results[i] = CodeOf(got[i]);
      if (!got[i].ok() && failed++ == 0) first = i;
    }
    if (failed == 0) return Status::OK();
    const Status& f = got[first];
    return Status(f.code(), std::to_string(failed) + " of " + std::to_string(n) + " databases not added; the first, #" +
                                std::to_string(first) + ": " + f.message());
  });
}

REPLITE_EXPORT int replite_db_remove(replite_replicator* r, const char* db_path, char** errptr) {
  return DbCall(r, db_path, errptr,
                [&](ReplicatorState& st, const std::string& path) { return st.r->Remove(path); });
}

REPLITE_EXPORT int replite_db_attach(replite_replicator* r, const char* db_path, struct sqlite3* conn,
                                     char** errptr) {
  return DbCall(r, db_path, errptr, [&](ReplicatorState& st, const std::string& path) -> Status {
    if (conn == nullptr) return NullArg("conn");
    return st.r->Attach(path, conn);
  });
}

REPLITE_EXPORT int replite_db_detach(replite_replicator* r, const char* db_path, struct sqlite3* conn,
                                     char** errptr) {
  return DbCall(r, db_path, errptr, [&](ReplicatorState& st, const std::string& path) -> Status {
    if (conn == nullptr) return NullArg("conn");
    return st.r->Detach(path, conn);
  });
}

REPLITE_EXPORT int replite_db_notify(replite_replicator* r, const char* db_path) {
  return DbCall(r, db_path, nullptr,
                [&](ReplicatorState& st, const std::string& path) { return st.r->Notify(path); });
}

REPLITE_EXPORT int replite_db_wait_durable(replite_replicator* r, const char* db_path, int64_t timeout_ms,
                                           uint64_t* out_txid, char** errptr) {
  if (out_txid != nullptr) *out_txid = 0;
  return DbCall(r, db_path, errptr, [&](ReplicatorState& st, const std::string& path) {
    uint64_t txid = 0;
    Status s = st.r->WaitDurable(path, timeout_ms, &txid);
    if (out_txid != nullptr) *out_txid = txid;
    return s;
  });
}

REPLITE_EXPORT int replite_db_snapshot(replite_replicator* r, const char* db_path, char** errptr) {
  return DbCall(r, db_path, errptr,
                [&](ReplicatorState& st, const std::string& path) { return st.r->Snapshot(path); });
}

REPLITE_EXPORT int replite_db_checkpoint(replite_replicator* r, const char* db_path, int truncate, char** errptr) {
  return DbCall(r, db_path, errptr,
                [&](ReplicatorState& st, const std::string& path) { return st.r->Checkpoint(path, truncate != 0); });
}

// ---- introspection ----

REPLITE_EXPORT char* replite_status_json(replite_replicator* r, const char* db_path, char** errptr) {
  return GuardString(errptr, [&](std::string* out) -> Status {
    std::shared_ptr<ReplicatorState> st;
    Status s = Lookup(r, &st);
    if (!s.ok()) return s;
    if (db_path != nullptr) {
      DatabaseStatus d;
      s = st->r->GetStatus(db_path, &d);
      if (!s.ok()) return s;
      AppendDatabaseJson(out, d);
      return Status::OK();
    }
    const replite::ReplicatorStatus sum = st->r->GetSummary(10);
    JsonObject o(out);
    o.Num("databases", sum.databases);
    o.Num("with_errors", sum.with_errors);
    o.Num("jobs_queued", sum.jobs_queued);
    o.Int("worker_threads", sum.worker_threads);
    o.Int("worker_threads_live", sum.worker_threads_live);
    std::string mem = "{";
    for (size_t i = 0; i < sum.memory.size(); i++) {
      if (i) mem += ',';
      mem += "\"" + sum.memory[i].first + "\":" + std::to_string(sum.memory[i].second);
    }
    mem += '}';
    o.Raw("memory_bytes", mem);
    std::string lag = "[";
    for (size_t i = 0; i < sum.laggards.size(); i++) {
      if (i) lag += ',';
      AppendDatabaseJson(&lag, sum.laggards[i]);
    }
    lag += ']';
    o.Raw("laggards", lag);
    o.End();
    return Status::OK();
  });
}

REPLITE_EXPORT char* replite_metrics_text(replite_replicator* r, char** errptr) {
  return GuardString(errptr, [&](std::string* out) -> Status {
    std::shared_ptr<ReplicatorState> st;
    Status s = Lookup(r, &st);
    if (!s.ok()) return s;
    *out = st->r->Metrics();
    return Status::OK();
  });
}

REPLITE_EXPORT char* replite_databases_json(replite_replicator* r, char** errptr) {
  return GuardString(errptr, [&](std::string* out) -> Status {
    std::shared_ptr<ReplicatorState> st;
    Status s = Lookup(r, &st);
    if (!s.ok()) return s;
    *out = "[";
    bool first = true;
    for (const auto& p : st->r->Databases()) {
      if (!first) *out += ',';
      first = false;
      AppendJsonString(out, p);
    }
    *out += ']';
    return Status::OK();
  });
}

// ---- restore ----

REPLITE_EXPORT int replite_restore(const char* replica_url, const char* output_path, const char* options,
                                   replite_progress_fn progress, void* user, char** errptr) {
  return Guard(errptr, [&]() -> Status {
    replite::RestoreResult rr;
    return RestoreWithOptions(replica_url, output_path, options, progress, user, &rr);
  });
}

REPLITE_EXPORT char* replite_restore_json(const char* replica_url, const char* output_path, const char* options,
                                          replite_progress_fn progress, void* user, char** errptr) {
  return GuardString(errptr, [&](std::string* out) -> Status {
    replite::RestoreResult rr;
    Status s = RestoreWithOptions(replica_url, output_path, options, progress, user, &rr);
    if (!s.ok()) return s;
    JsonObject o(out);
    o.Str("generation", rr.generation);
    o.Num("txid", rr.txid);
    o.Num("requested_txid", rr.requested_txid);
    o.Int("ts_ms", rr.timestamp_ms);
    o.Str("time", replite::FormatRfc3339(rr.timestamp_ms));
    o.Num("page_size", rr.page_size);
    o.Num("pages", rr.pages);
    o.Raw("checksum_verified", rr.checksum_verified ? "true" : "false");
    o.Num("objects", rr.objects);
    o.Num("bytes", rr.bytes);
    o.Raw("stopped_early", rr.stopped_early ? "true" : "false");
    o.StrOrNull("bad_object", rr.bad_object);
    o.StrOrNull("stop_reason", rr.stop_reason);
    o.End();
    return Status::OK();
  });
}

REPLITE_EXPORT char* replite_generations_json(const char* replica_url, char** errptr) {
  return GuardString(errptr, [&](std::string* out) -> Status {
    if (replica_url == nullptr) return NullArg("replica_url");
    std::vector<replite::GenerationInfo> gens;
    Status s = replite::ListGenerations(replica_url, &gens);
    if (!s.ok()) return s;
    *out = "[";
    for (size_t i = 0; i < gens.size(); i++) {
      if (i) *out += ',';
      const auto& g = gens[i];
      JsonObject o(out);
      o.Str("id", g.id);
      o.Num("first_txid", g.first_txid);
      o.Num("last_txid", g.last_txid);
      o.Int("first_ts_ms", g.first_ts_ms);
      o.Int("last_ts_ms", g.last_ts_ms);
      o.Num("snapshots", g.snapshots);
      o.Num("segments", g.segments);
      o.Num("compacted", g.compacted);
      o.Num("bytes", g.bytes);
      o.End();
    }
    *out += ']';
    return Status::OK();
  });
}

}  // extern "C"
