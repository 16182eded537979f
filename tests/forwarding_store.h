// ForwardingStore: an ObjectStore that passes every call to another one. A
// test derives from it and overrides only the calls it watches or changes
// (counts bytes read, interposes another writer before a PUT, ...).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "replite/sys/object_store.h"

namespace replite::test {

class ForwardingStore : public ObjectStore {
 public:
  explicit ForwardingStore(std::shared_ptr<ObjectStore> inner) : inner_(std::move(inner)) {}
  Status Put(const std::string& key, const std::string& data, const PutOptions& o, std::string* etag) override {
    return inner_->Put(key, data, o, etag);
  }
  Status PutFile(const std::string& key, const std::string& path, const PutOptions& o) override {
    return inner_->PutFile(key, path, o);
  }
  Status Get(const std::string& key, std::string* out, uint64_t off, uint64_t len) override {
    return inner_->Get(key, out, off, len);
  }
  Status Head(const std::string& key, ObjectInfo* out) override { return inner_->Head(key, out); }
  Status List(const std::string& prefix, std::vector<ObjectInfo>* out) override { return inner_->List(prefix, out); }
  Status Delete(const std::vector<std::string>& keys) override { return inner_->Delete(keys); }
  std::string Describe() const override { return inner_->Describe(); }
  ObjectStore* inner() const { return inner_.get(); }

 private:
  std::shared_ptr<ObjectStore> inner_;
};

}  // namespace replite::test
