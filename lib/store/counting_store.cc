#include "store/counting_store.h"

namespace replite {
namespace {

thread_local const std::string* t_group = nullptr;
const std::string kNoGroup = "none";

class CountingStore final : public ObjectStore {
 public:
  CountingStore(std::shared_ptr<ObjectStore> inner, Metrics* m) : inner_(std::move(inner)), m_(m) {}

  Status Put(const std::string& key, const std::string& data, const PutOptions& o, std::string* etag) override {
    return Count("put", inner_->Put(key, data, o, etag), data.size());
  }
  Status PutFile(const std::string& key, const std::string& path, const PutOptions& o) override {
    return Count("put_file", inner_->PutFile(key, path, o), 0);
  }
  Status Get(const std::string& key, std::string* out, uint64_t off, uint64_t len) override {
    Status s = inner_->Get(key, out, off, len);
    return Count("get", s, s.ok() ? out->size() : 0);
  }
  Status Head(const std::string& key, ObjectInfo* out) override { return Count("head", inner_->Head(key, out), 0); }
  Status List(const std::string& prefix, std::vector<ObjectInfo>* out) override {
    return Count("list", inner_->List(prefix, out), 0);
  }
  Status Delete(const std::vector<std::string>& keys) override { return Count("delete", inner_->Delete(keys), 0); }
  Status RemoveAbandoned(const std::string& prefix, int64_t older_than_ms, uint64_t* removed) override {
    return Count("remove_abandoned", inner_->RemoveAbandoned(prefix, older_than_ms, removed), 0);
  }
  std::string Describe() const override { return inner_->Describe(); }

 private:
  Status Count(const char* op, Status s, uint64_t bytes) {
    const std::string& g = t_group ? *t_group : kNoGroup;
    m_->Add("replite_store_requests_total", {{"group", g}, {"op", op}, {"result", s.ok() ? "ok" : CodeName(s.code())}});
    if (bytes) m_->Add("replite_store_bytes_total", {{"group", g}, {"op", op}}, double(bytes));
    return s;
  }
  std::shared_ptr<ObjectStore> inner_;
  Metrics* m_;
};

}  // namespace

ScopedMetricsGroup::ScopedMetricsGroup(const std::string* group) : prev_(t_group) { t_group = group; }
ScopedMetricsGroup::~ScopedMetricsGroup() { t_group = prev_; }
const std::string* ScopedMetricsGroup::Current() { return t_group; }

void DeclareStoreMetrics(Metrics* m) {
  m->Counter("replite_store_requests_total", "Object store calls by metrics group, operation and result.");
  m->Counter("replite_store_bytes_total", "Object bytes written (put) and read (get).");
}

std::shared_ptr<ObjectStore> NewCountingStore(std::shared_ptr<ObjectStore> inner, Metrics* m) {
  return std::make_shared<CountingStore>(std::move(inner), m);
}

}  // namespace replite
