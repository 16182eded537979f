#include "replica/manifest_update.h"

#include "format/layout.h"
#include "replica/catalog.h"

namespace replite {

Status UpdateManifest(ObjectStore* store, const std::string& prefix, const std::function<bool(Manifest*)>& edit,
                      const std::function<Status()>& fence) {
  const std::string key = ManifestKey(prefix);
  for (int attempt = 0; attempt < 8; attempt++) {
    // The etag first: if the manifest changes between this HEAD and the
    // GET, the conditional write below fails and the loop reads again.
    ObjectInfo info;
    Status s = store->Head(key, &info);
    const bool exists = s.ok();
    if (!exists && s.code() != Code::kNotFound) return s;
    Manifest m;
    std::vector<GenerationEntry> gens;
    s = LoadGenerations(store, prefix, &gens, &m);
    if (!s.ok()) return s;
    m.generations = gens;
    if (!edit(&m)) return Status::OK();
    if (fence) {
      s = fence();
      if (!s.ok()) return s;
    }
    PutOptions po;
    if (exists && !info.etag.empty()) po.if_match = info.etag;
    if (!exists) po.if_none_match = true;
    s = store->Put(key, EncodeManifest(m), po);
    if (s.code() != Code::kFailedPrecondition) return s;
  }
  return Status::Unavailable("manifest " + store->Describe() + key +
                             ": changed by another writer on every attempt; retrying later");
}

}  // namespace replite
