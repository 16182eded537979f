#include "replica/lease.h"

#include <chrono>
#include <ctime>
#include <sstream>

#include "util/time_format.h"

namespace replite {
namespace {

int64_t MonoUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Wall clock: compared across hosts (never a test Env's clock).
int64_t WallMs() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string ParentOf(const std::string& prefix) {
  const size_t slash = prefix.rfind('/');
  return slash == std::string::npos ? std::string() : prefix.substr(0, slash);
}

// "key value" lines after a first line naming the format.
struct Record {
  std::map<std::string, std::string> fields;
  std::string Get(const std::string& k) const {
    auto it = fields.find(k);
    return it == fields.end() ? std::string() : it->second;
  }
  int64_t Int(const std::string& k) const {
    const std::string v = Get(k);
    return v.empty() ? 0 : std::strtoll(v.c_str(), nullptr, 10);
  }
};

bool ParseRecord(const std::string& text, const std::string& magic, Record* out) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != magic) return false;
  while (std::getline(in, line)) {
    const size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    out->fields[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return !out->Get("instance").empty();
}

}  // namespace

std::string LeaseKey(const std::string& prefix) { return prefix.empty() ? "lease" : prefix + "/lease"; }

std::string HeartbeatKey(const std::string& prefix, const std::string& instance) {
  const std::string parent = ParentOf(prefix);
  return (parent.empty() ? std::string() : parent + "/") + ".replite/instances/" + instance;
}

LeaseKeeper::LeaseKeeper(std::string instance, std::string host, int pid, int64_t ttl_ms)
    : instance_(std::move(instance)), host_(std::move(host)), pid_(pid), ttl_ms_(ttl_ms) {}

std::string LeaseKeeper::Describe(ObjectStore* store, const std::string& key) const {
  std::string d = store->Describe();
  if (!d.empty() && d.back() != '/') d += '/';
  return d + key;
}

bool LeaseKeeper::Fresh(const Heartbeat& hb, int64_t now_us) const {
  const int64_t ok = hb.ok_mono_us.load();
  return ok != 0 && now_us - ok < ttl_ms_ * 1000 * 3 / 4;
}

std::shared_ptr<LeaseKeeper::Heartbeat> LeaseKeeper::HeartbeatFor(ObjectStore* store, const std::string& prefix,
                                                                  bool create) {
  std::pair<ObjectStore*, std::string> k{store, HeartbeatKey(prefix, instance_)};
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    auto it = heartbeats_.find(k);
    if (it != heartbeats_.end()) return it->second;
  }
  if (!create) return nullptr;
  std::unique_lock<std::shared_mutex> l(mu_);
  auto& hb = heartbeats_[k];
  if (!hb) {
    hb = std::make_shared<Heartbeat>();
    hb->store = store;
    hb->key = k.second;
  }
  return hb;
}

Status LeaseKeeper::Renew(Heartbeat& hb) {
  const int64_t start = MonoUs();
  const int64_t wall = WallMs();
  std::ostringstream o;
  o << "replite-heartbeat 1\ninstance " << instance_ << "\nhost " << host_ << "\npid " << pid_ << "\nrenewed_ms "
    << wall << "\nexpires_ms " << wall + ttl_ms_ << "\n";
  Status s = hb.store->Put(hb.key, o.str());
  if (!s.ok()) return s.Annotate("lease heartbeat " + Describe(hb.store, hb.key) + ": ");
  // A renewal after a lapse: others may have taken leases over meanwhile,
  // so every lease must be checked again before the next write.
  if (hb.ok_mono_us.load() != 0 && !Fresh(hb, start)) hb.epoch.fetch_add(1);
  hb.ok_mono_us.store(start);
  return Status::OK();
}

bool LeaseKeeper::Usable(ObjectStore* store, const std::string& prefix, uint32_t epoch) {
  if (!enabled()) return true;
  if (epoch == 0) return false;
  auto hb = HeartbeatFor(store, prefix, false);
  return hb && hb->epoch.load() == epoch && Fresh(*hb, MonoUs());
}

Status LeaseKeeper::Acquire(ObjectStore* store, const std::string& prefix, uint32_t* epoch, std::string* taken_from) {
  taken_from->clear();
  *epoch = enabled() ? 0 : 1;
  if (!enabled()) return Status::OK();
  auto hb = HeartbeatFor(store, prefix, true);
  {
    // Our heartbeat must be fresh before the lease names us (a successor
    // would otherwise find it missing and take the lease at once).
    std::lock_guard<std::mutex> l(hb->mu);
    if (!Fresh(*hb, MonoUs())) {
      Status s = Renew(*hb);
      if (!s.ok()) return s;
    }
  }
  const uint32_t e = hb->epoch.load();
  const std::string key = LeaseKey(prefix);
  std::ostringstream mine;
  mine << "replite-lease 1\ninstance " << instance_ << "\nheartbeat " << hb->key << "\nhost " << host_ << "\npid "
       << pid_ << "\nacquired_ms " << WallMs() << "\n";
  for (int attempt = 0; attempt < 5; attempt++) {
    ObjectInfo info;
    Status s = store->Head(key, &info);
    if (s.code() == Code::kNotFound) {
      PutOptions po;
      po.if_none_match = true;
      s = store->Put(key, mine.str(), po);
      if (s.ok()) {
        *epoch = e;
        return s;
      }
      if (s.code() == Code::kFailedPrecondition) continue;  // created meanwhile: look again
      return s.Annotate("lease " + Describe(store, key) + ": ");
    }
    if (!s.ok()) return s.Annotate("lease " + Describe(store, key) + ": ");
    std::string text;
    s = store->Get(key, &text);
    if (s.code() == Code::kNotFound) continue;
    if (!s.ok()) return s.Annotate("lease " + Describe(store, key) + ": ");
    Record lease;
    if (!ParseRecord(text, "replite-lease 1", &lease))
      return Status::Corruption("lease " + Describe(store, key) +
                                " is not a replite lease: if no replite instance writes this replica, delete it");
    if (lease.Get("instance") == instance_) {
      *epoch = e;
      return Status::OK();
    }
    // Another instance's: alive?
    const std::string hb_key = lease.Get("heartbeat");
    std::string hb_text;
    Record holder;
    s = hb_key.empty() ? Status::NotFound("no heartbeat") : store->Get(hb_key, &hb_text);
    if (!s.ok() && s.code() != Code::kNotFound) return s.Annotate("lease holder's heartbeat " + hb_key + ": ");
    const bool has_hb = s.ok() && ParseRecord(hb_text, "replite-heartbeat 1", &holder) &&
                        holder.Get("instance") == lease.Get("instance");
    if (has_hb && WallMs() <= holder.Int("expires_ms"))
      return Status::FailedPrecondition(
          "replica " + Describe(store, prefix) + " is being written by another replite instance " +
          lease.Get("instance") + " (host " + holder.Get("host") + ", pid " + holder.Get("pid") +
          ", heartbeat valid until " + FormatUtcMs(holder.Int("expires_ms")) +
          "): this database is not replicated until that instance stops (its lease is taken over at once when it "
          "closes, or when its heartbeat expires); if it should not replicate here, stop it");
    PutOptions po;
    po.if_match = info.etag;
    s = store->Put(key, mine.str(), po);
    if (s.ok()) {
      *taken_from = lease.Get("instance");
      *epoch = e;
      return s;
    }
    if (s.code() == Code::kFailedPrecondition) continue;  // someone else was faster: look again
    return s.Annotate("lease " + Describe(store, key) + ": ");
  }
  return Status::Unavailable("lease " + Describe(store, key) +
                             ": changed by others on every attempt (several instances taking it at once?); retrying later");
}

Status LeaseKeeper::VerifyHeld(ObjectStore* store, const std::string& prefix) {
  if (!enabled()) return Status::OK();
  const std::string key = LeaseKey(prefix);
  std::string text;
  Status s = store->Get(key, &text);
  if (!s.ok()) return s.Annotate("lease " + Describe(store, key) + ": ");
  Record lease;
  if (!ParseRecord(text, "replite-lease 1", &lease) || lease.Get("instance") != instance_)
    return Status::FailedPrecondition("lease " + Describe(store, key) + " was taken over by replite instance " +
                           lease.Get("instance") + " (host " + lease.Get("host") + ", pid " + lease.Get("pid") +
                           "): this instance no longer writes that replica");
  return Status::OK();
}

Status LeaseKeeper::RenewAll() {
  std::vector<std::shared_ptr<Heartbeat>> all;
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    for (auto& [k, hb] : heartbeats_) all.push_back(hb);
  }
  Status first;
  for (auto& hb : all) {
    std::lock_guard<std::mutex> l(hb->mu);
    Status s = Renew(*hb);
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

void LeaseKeeper::Start(std::function<void(const std::string&)> log) {
  if (!enabled() || thread_.joinable()) return;
  thread_ = std::thread([this, log = std::move(log)] {
    bool failing = false;
    std::unique_lock<std::mutex> l(thread_mu_);
    while (!thread_cv_.wait_for(l, std::chrono::milliseconds(renew_interval_ms()), [this] { return stop_; })) {
      l.unlock();
      Status s = RenewAll();
      if (!s.ok() && !failing) log(s.ToString() + " (this instance stops writing its replicas " +
                                   std::to_string(ttl_ms_ * 3 / 4) + " ms after the last renewal until one succeeds)");
      if (s.ok() && failing) log("lease heartbeats renewed again");
      failing = !s.ok();
      l.lock();
    }
  });
}

void LeaseKeeper::StopThread() {
  {
    std::lock_guard<std::mutex> l(thread_mu_);
    stop_ = true;
  }
  thread_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LeaseKeeper::Stop() {
  StopThread();
  ReleaseAll();
}

LeaseKeeper::~LeaseKeeper() { StopThread(); }

void LeaseKeeper::ReleaseAll() {
  std::unique_lock<std::shared_mutex> l(mu_);
  std::map<ObjectStore*, std::vector<std::string>> keys;
  for (auto& [k, hb] : heartbeats_) keys[k.first].push_back(k.second);
  heartbeats_.clear();
  l.unlock();
  for (auto& [store, v] : keys) store->Delete(v);
}

}  // namespace replite
