// Leases: at most one replite instance writes a replica at a time.
//
// A replica under prefix P has a lease object P/lease naming its holder: an
// instance id (core/instance.h, persisted in the state dir, so a restarted
// process keeps its leases) and that instance's heartbeat object. Heartbeats
// are per instance and per replica parent, parent(P)/.replite/instances/<id>,
// renewed by one PUT every ttl/4 for every database below that parent: an
// idle database costs no request, 100,000 databases under one root cost one
// PUT per renewal.
//
//  - Taking a lease: created with If-None-Match; held by us: kept; held by
//    another instance whose heartbeat is missing (it closed) or expired (it
//    died): taken over with If-Match on the lease's etag, and the caller is
//    told whom it took it from (its position may lag what that instance
//    wrote: it starts a new generation); held by a live instance: refused
//    with an error naming the holder, its host, pid and heartbeat expiry.
//  - Fencing: the holder stops writing when it could not renew its
//    heartbeat for 3/4 of the ttl (others take over only after the whole
//    ttl; the last quarter absorbs clock skew between hosts), and after such
//    a lapse every lease is checked again before the next write (Epoch).
//    Manifest updates check the lease object again (VerifyHeld).
//  - Close deletes the heartbeats: a successor takes over at once.
//
// Expiry compares a heartbeat's wall-clock expiry with the reader's clock:
// hosts' clocks must agree within ttl/4.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>

#include "replite/status.h"
#include "replite/sys/object_store.h"

namespace replite {

std::string LeaseKey(const std::string& prefix);
std::string HeartbeatKey(const std::string& prefix, const std::string& instance);

class LeaseKeeper {
 public:
  // ttl_ms <= 0: leases are off (every call succeeds, nothing is written).
  LeaseKeeper(std::string instance, std::string host, int pid, int64_t ttl_ms);
  ~LeaseKeeper();  // stops the renewal thread (without releasing)

  bool enabled() const { return ttl_ms_ > 0; }
  int64_t ttl_ms() const { return ttl_ms_; }
  int64_t renew_interval_ms() const { return ttl_ms_ / 4; }
  const std::string& instance() const { return instance_; }

  // True if a lease taken (Acquire) with `epoch` on (store, prefix) may be
  // written under now: the heartbeat is fresh and has not lapsed since.
  bool Usable(ObjectStore* store, const std::string& prefix, uint32_t epoch);

  // Takes (or confirms) the lease of `prefix`; *epoch receives what Usable
  // takes; *taken_from the instance id it was taken over from ("" if it was
  // free or ours). kFailedPrecondition: held by a live instance.
  Status Acquire(ObjectStore* store, const std::string& prefix, uint32_t* epoch, std::string* taken_from);

  // Before a manifest update: one GET of the lease object, which must name
  // this instance (kFailedPrecondition naming the holder otherwise).
  Status VerifyHeld(ObjectStore* store, const std::string& prefix);

  // Renews every heartbeat written so far (one PUT each). Returns the
  // first failure (the others are still tried).
  Status RenewAll();

  // Deletes this instance's heartbeats (Close).
  void ReleaseAll();

  // Renews every renew_interval_ms on one thread of its own (a worker
  // pool busy with large uploads must not delay it into a lapse); `log`
  // hears when renewals start failing and when they recover.
  void Start(std::function<void(const std::string&)> log);
  // Stops that thread, then ReleaseAll.
  void Stop();

 private:
  struct Heartbeat {
    ObjectStore* store = nullptr;
    std::string key;
    std::mutex mu;            // one renewal at a time
    std::atomic<int64_t> ok_mono_us{0};  // start of the last successful renewal (0: none)
    std::atomic<uint32_t> epoch{1};      // bumped by a renewal after a lapse
  };
  std::shared_ptr<Heartbeat> HeartbeatFor(ObjectStore* store, const std::string& prefix, bool create);
  Status Renew(Heartbeat& hb);
  bool Fresh(const Heartbeat& hb, int64_t now_us) const;
  void StopThread();
  std::string Describe(ObjectStore* store, const std::string& key) const;

  const std::string instance_, host_;
  const int pid_;
  const int64_t ttl_ms_;
  std::shared_mutex mu_;
  std::map<std::pair<ObjectStore*, std::string>, std::shared_ptr<Heartbeat>> heartbeats_;
  std::mutex thread_mu_;
  std::condition_variable thread_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace replite
