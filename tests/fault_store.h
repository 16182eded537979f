// FaultStore: an ObjectStore wrapper for unit tests that injects failures
// in front of a real store (usually NewFileStore over a TempDir):
//  - fail the Nth call (counted over every operation, 1-based);
//  - fail every call of one operation (put/get/list/delete/head) with a
//    given Status code, optionally only the next `times` of them;
//  - delay every call (or one operation) by a fixed time;
//  - "partial write": the next Put/PutFile writes a truncated copy of the
//    object under the key in the inner store, then returns kUnavailable
//    (what a torn upload through a non-atomic backend would look like);
//  - outage: refuse everything with kUnavailable until switched off.
// Counters of calls and injected faults per operation.
//
// Thread-safety: every method may be called concurrently from any thread
// (the fault plan is guarded by one mutex; the inner store is called
// without holding it, so delays do not serialize callers).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "replite/sys/object_store.h"

namespace replite::test {

enum class StoreOp : int { kPut = 0, kGet, kHead, kList, kDelete, kCount };
const char* StoreOpName(StoreOp op);

class FaultStore : public ObjectStore {
 public:
  explicit FaultStore(std::shared_ptr<ObjectStore> inner) : inner_(std::move(inner)) {}

  // Fail the nth call from now on (1 = the next call), whatever its
  // operation, with `code`. One-shot.
  void FailNthCall(uint64_t n, Code code = Code::kUnavailable);
  // Fail calls of `op` with `code`: the next `times` of them (-1: all until
  // cleared).
  void FailOp(StoreOp op, Code code, int times = -1);
  void ClearOp(StoreOp op);
  // Sleep this long before each call (of `op`, or of every op with kCount).
  void SetDelayMs(int64_t ms, StoreOp op = StoreOp::kCount);
  // The next `times` Put/PutFile calls write the first `keep_fraction` of
  // the data under the key, then fail with kUnavailable.
  void PartialWrite(double keep_fraction = 0.5, int times = 1);
  // Refuse every call with kUnavailable while on.
  void SetOutage(bool on) { outage_ = on; }
  // Clears every plan (counters stay).
  void Heal();

  uint64_t calls(StoreOp op) const { return calls_[int(op)].load(); }
  uint64_t faults(StoreOp op) const { return faults_[int(op)].load(); }
  uint64_t total_calls() const;
  uint64_t total_faults() const;
  std::string CountersString() const;  // "put 3/1 get 10/2 ..." (calls/faults)

  ObjectStore* inner() const { return inner_.get(); }

  Status Put(const std::string& key, const std::string& data, const PutOptions& opts = {},
             std::string* etag = nullptr) override;
  Status PutFile(const std::string& key, const std::string& local_path, const PutOptions& opts = {}) override;
  Status Get(const std::string& key, std::string* out, uint64_t offset = 0, uint64_t length = UINT64_MAX) override;
  Status Head(const std::string& key, ObjectInfo* out) override;
  Status List(const std::string& prefix, std::vector<ObjectInfo>* out) override;
  Status Delete(const std::vector<std::string>& keys) override;
  Status RemoveAbandoned(const std::string& prefix, int64_t older_than_ms, uint64_t* removed) override {
    return inner_->RemoveAbandoned(prefix, older_than_ms, removed);
  }
  std::string Describe() const override { return "fault(" + inner_->Describe() + ")"; }

 private:
  struct OpPlan {
    Code code = Code::kOk;
    int times = 0;  // -1: forever
    int64_t delay_ms = 0;
  };
  // Decides the fate of one call: OK to forward, or the injected error.
  // *partial is set for a put that must be written truncated.
  Status Admit(StoreOp op, const std::string& what, double* partial);
  Status Partial(const std::string& key, const std::string& data, double keep);

  std::shared_ptr<ObjectStore> inner_;
  mutable std::mutex mu_;
  OpPlan plans_[int(StoreOp::kCount)];
  int64_t delay_all_ms_ = 0;
  uint64_t nth_ = 0;  // absolute call number to fail (0: none)
  Code nth_code_ = Code::kUnavailable;
  uint64_t seq_ = 0;  // calls admitted so far
  double partial_keep_ = 0.5;
  int partial_times_ = 0;
  std::atomic<bool> outage_{false};
  std::atomic<uint64_t> calls_[int(StoreOp::kCount)] = {};
  std::atomic<uint64_t> faults_[int(StoreOp::kCount)] = {};
};

}  // namespace replite::test
