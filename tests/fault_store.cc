// FaultStore: see fault_store.h.
#include "fault_store.h"

#include <chrono>
#include <thread>

#include "util/file_util.h"

namespace replite::test {

const char* StoreOpName(StoreOp op) {
  switch (op) {
    case StoreOp::kPut: return "put";
    case StoreOp::kGet: return "get";
    case StoreOp::kHead: return "head";
    case StoreOp::kList: return "list";
    case StoreOp::kDelete: return "delete";
    default: return "?";
  }
}

void FaultStore::FailNthCall(uint64_t n, Code code) {
  std::lock_guard<std::mutex> l(mu_);
  nth_ = n == 0 ? 0 : seq_ + n;
  nth_code_ = code;
}

void FaultStore::FailOp(StoreOp op, Code code, int times) {
  std::lock_guard<std::mutex> l(mu_);
  plans_[int(op)].code = code;
  plans_[int(op)].times = times;
}

void FaultStore::ClearOp(StoreOp op) {
  std::lock_guard<std::mutex> l(mu_);
  plans_[int(op)].code = Code::kOk;
  plans_[int(op)].times = 0;
}

void FaultStore::SetDelayMs(int64_t ms, StoreOp op) {
  std::lock_guard<std::mutex> l(mu_);
  if (op == StoreOp::kCount) delay_all_ms_ = ms;
  else plans_[int(op)].delay_ms = ms;
}

void FaultStore::PartialWrite(double keep_fraction, int times) {
  std::lock_guard<std::mutex> l(mu_);
  partial_keep_ = keep_fraction;
  partial_times_ = times;
}

void FaultStore::Heal() {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& p : plans_) p = OpPlan();
  delay_all_ms_ = 0;
  nth_ = 0;
  partial_times_ = 0;
  outage_ = false;
}

uint64_t FaultStore::total_calls() const {
  uint64_t n = 0;
  for (const auto& c : calls_) n += c.load();
  return n;
}

uint64_t FaultStore::total_faults() const {
  uint64_t n = 0;
  for (const auto& c : faults_) n += c.load();
  return n;
}

std::string FaultStore::CountersString() const {
  std::string s;
  for (int i = 0; i < int(StoreOp::kCount); i++) {
    if (!s.empty()) s += " ";
    s += std::string(StoreOpName(StoreOp(i))) + " " + std::to_string(calls_[i].load()) + "/" +
         std::to_string(faults_[i].load());
  }
  return s + " (calls/faults)";
}

Status FaultStore::Admit(StoreOp op, const std::string& what, double* partial) {
  calls_[int(op)]++;
  int64_t delay = 0;
  Status fail;
  {
    std::lock_guard<std::mutex> l(mu_);
    const uint64_t n = ++seq_;
    delay = delay_all_ms_ + plans_[int(op)].delay_ms;
    OpPlan& p = plans_[int(op)];
    if (outage_) {
      fail = Status::Unavailable("fault store: outage (" + std::string(StoreOpName(op)) + " " + what + ")");
    } else if (nth_ != 0 && n == nth_) {
      nth_ = 0;
      fail = Status(nth_code_, "fault store: injected failure of call #" + std::to_string(n) + " (" +
                                   StoreOpName(op) + " " + what + ")");
    } else if (p.code != Code::kOk && p.times != 0) {
      if (p.times > 0) p.times--;
      fail = Status(p.code, "fault store: injected " + std::string(StoreOpName(op)) + " failure (" + what + ")");
    } else if (op == StoreOp::kPut && partial && partial_times_ > 0) {
      partial_times_--;
      *partial = partial_keep_;
    }
  }
  if (delay > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  if (!fail.ok() || (partial && *partial >= 0)) faults_[int(op)]++;
  return fail;
}

Status FaultStore::Partial(const std::string& key, const std::string& data, double keep) {
  const size_t n = size_t(double(data.size()) * keep);
  Status s = inner_->Put(key, data.substr(0, std::min(n, data.size() ? data.size() - 1 : 0)));
  if (!s.ok()) return s;
  return Status::Unavailable("fault store: connection lost after a partial write of " + key);
}

Status FaultStore::Put(const std::string& key, const std::string& data, const PutOptions& opts, std::string* etag) {
  double partial = -1;
  Status s = Admit(StoreOp::kPut, key, &partial);
  if (!s.ok()) return s;
  if (partial >= 0) return Partial(key, data, partial);
  return inner_->Put(key, data, opts, etag);
}

Status FaultStore::PutFile(const std::string& key, const std::string& local_path, const PutOptions& opts) {
  double partial = -1;
  Status s = Admit(StoreOp::kPut, key, &partial);
  if (!s.ok()) return s;
  if (partial >= 0) {
    std::string data;
    s = ReadFileToString(local_path, &data);
    if (!s.ok()) return s;
    return Partial(key, data, partial);
  }
  return inner_->PutFile(key, local_path, opts);
}

Status FaultStore::Get(const std::string& key, std::string* out, uint64_t offset, uint64_t length) {
  Status s = Admit(StoreOp::kGet, key, nullptr);
  if (!s.ok()) return s;
  return inner_->Get(key, out, offset, length);
}

Status FaultStore::Head(const std::string& key, ObjectInfo* out) {
  Status s = Admit(StoreOp::kHead, key, nullptr);
  if (!s.ok()) return s;
  return inner_->Head(key, out);
}

Status FaultStore::List(const std::string& prefix, std::vector<ObjectInfo>* out) {
  Status s = Admit(StoreOp::kList, prefix, nullptr);
  if (!s.ok()) return s;
  return inner_->List(prefix, out);
}

Status FaultStore::Delete(const std::vector<std::string>& keys) {
  Status s = Admit(StoreOp::kDelete, keys.empty() ? "" : keys.front(), nullptr);
  if (!s.ok()) return s;
  return inner_->Delete(keys);
}

}  // namespace replite::test
