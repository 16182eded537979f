#include "replica/replica_writer.h"

#include <sys/stat.h>

#include <algorithm>
#include <vector>

#include "format/layout.h"
#include "replica/manifest_update.h"
#include "replica/pack_catalog.h"

namespace replite {

namespace {

// The size of a file just uploaded (0 if it cannot be read).
uint64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
}

// Every file shipped from here is a spool file that is deleted once stored.
PutOptions Consumed() {
  PutOptions o;
  o.consumes_source = true;
  return o;
}

}  // namespace

Status ReplicaWriter::PutSegment(const SegmentHeader& h, const std::string& data, const std::string& file,
                                 uint64_t* bytes) {
  const std::string key = SegmentKey(ref_.prefix, h.generation, h.first_txid, h.last_txid);
  if (file.empty()) {
    *bytes = data.size();
    Status st = ref_.store->Put(key, data);
    if (st.ok() && ref_.recent) ref_.recent->Keep(key, data);  // compaction's next input
    return st;
  }
  *bytes = FileSize(file);
  Status st = ref_.store->PutFile(key, file, Consumed());
  return st;
}

Status ReplicaWriter::PutSnapshot(const SegmentHeader& h, const std::string& file, uint64_t* bytes) {
  *bytes = FileSize(file);
  return ref_.store->PutFile(SnapshotKey(ref_.prefix, h.generation, h.first_txid), file, Consumed());
}

Status ReplicaWriter::PutSpooled(const SpoolEntry& e) {
  return ref_.store->PutFile(SegmentKey(ref_.prefix, e.generation, e.first_txid, e.last_txid), e.path, Consumed());
}

Status ReplicaWriter::AddGeneration(const GenerationEntry& g, uint32_t page_size,
                                    const std::function<Status()>& fence) {
  return UpdateManifest(
      ref_.store, ref_.prefix,
      [&](Manifest* m) {
        m->page_size = page_size;
        bool listed = false;
        for (const auto& e : m->generations) listed |= e.id == g.id;
        if (!listed) m->generations.push_back(g);
        return true;
      },
      fence);
}

Status ReplicaWriter::LastStoredTxid(uint64_t* txid) {
  std::vector<ObjectInfo> objs;
  Status st = ref_.store->List(GenerationsPrefix(ref_.prefix), &objs);
  if (!st.ok()) return st;
  uint64_t max_txid = 0;
  for (const auto& o : objs) {
    ObjectRef r;
    if (ParseObjectKey(ref_.prefix, o, &r)) max_txid = std::max(max_txid, r.last_txid);
  }
  // Segments still in packs (their own objects are written later).
  if (ref_.packs) {
    std::vector<ObjectRef> members;
    st = ref_.packs->Members(ref_.store, ref_.prefix, &members);
    if (!st.ok()) return st;
    for (const auto& m : members) max_txid = std::max(max_txid, m.last_txid);
  }
  *txid = max_txid;
  return Status::OK();
}

}  // namespace replite
