#include "replica/upload_spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "format/layout.h"
#include "util/file_util.h"
#include "util/hash.h"
#include "util/memory_size.h"

namespace replite {
namespace {

// "<gen16>-<first16>-<last16>.seg"
bool ParseEntryName(const std::string& name, std::string* gen, uint64_t* first, uint64_t* last) {
  if (name.size() != 16 + 1 + 16 + 1 + 16 + 4 || name.compare(name.size() - 4, 4, ".seg") != 0) return false;
  if (name[16] != '-' || name[33] != '-') return false;
  for (size_t i : {size_t(0), size_t(17), size_t(34)})
    for (size_t k = i; k < i + 16; k++)
      if (!std::isxdigit(static_cast<unsigned char>(name[k]))) return false;
  *gen = name.substr(0, 16);
  *first = std::strtoull(name.substr(17, 16).c_str(), nullptr, 16);
  *last = std::strtoull(name.substr(34, 16).c_str(), nullptr, 16);
  return *first != 0 && *first <= *last;
}

// Lists the entries of one database directory; removes temp files.
Status ScanDir(const std::string& dir, std::vector<SpoolEntry>* out) {
  out->clear();
  DIR* d = ::opendir(dir.c_str());
  if (!d) return errno == ENOENT ? Status::OK() : ErrnoStatus("spool " + dir, errno);
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string path = dir + "/" + name;
    SpoolEntry x;
    std::string gen;
    if (!ParseEntryName(name, &gen, &x.first_txid, &x.last_txid)) {
      continue;  // not an entry (temp files of a killed Append are removed by Open)
    }
    x.generation = gen;
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) continue;
    x.bytes = uint64_t(st.st_size);
    x.path = path;
    out->push_back(std::move(x));
  }
  ::closedir(d);
  std::sort(out->begin(), out->end(), [](const SpoolEntry& a, const SpoolEntry& b) {
    return a.first_txid != b.first_txid ? a.first_txid < b.first_txid : a.last_txid < b.last_txid;
  });
  return Status::OK();
}

SpoolBacklog BacklogOf(const std::vector<SpoolEntry>& v) {
  SpoolBacklog b;
  b.entries = uint32_t(v.size());
  b.first_txid = v.empty() ? 0 : v.front().first_txid;
  for (const auto& x : v) {
    b.bytes += x.bytes;
    b.last_txid = std::max(b.last_txid, x.last_txid);
  }
  return b;
}

}  // namespace

Status UploadSpool::Open(const std::string& dir, uint64_t cap_bytes) {
  dir_ = dir;
  cap_ = cap_bytes;
  Status s = MakeDirs(dir);
  if (!s.ok()) return s.Annotate("spool: ");
  DIR* d = ::opendir(dir.c_str());
  if (!d) return ErrnoStatus("spool " + dir, errno);
  std::vector<std::string> subdirs;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() == 16) subdirs.push_back(name);
  }
  ::closedir(d);
  for (const auto& name : subdirs) {
    RemoveDeadTemps(dir + "/" + name);  // an Append cut short by a crash
    std::vector<SpoolEntry> v;
    s = ScanDir(dir + "/" + name, &v);
    if (!s.ok()) return s;
    if (v.empty()) {
      ::rmdir((dir + "/" + name).c_str());
      continue;
    }
    const SpoolBacklog b = BacklogOf(v);
    bytes_ += b.bytes;
    entries_ += b.entries;
    backlog_[name] = b;
  }
  return Status::OK();
}

std::string UploadSpool::DirFor(const std::string& db_path, const std::string& replica_url) const {
  const std::string k = db_path + "\n" + replica_url;
  return dir_ + "/" + Hex16(XXH64(k.data(), k.size(), 0x73706f6f6cull));
}

SpoolBacklog UploadSpool::TakeBacklog(const std::string& db_path, const std::string& replica_url) {
  std::lock_guard<std::mutex> l(mu_);
  if (backlog_.empty()) return {};
  auto it = backlog_.find(BaseName(DirFor(db_path, replica_url)));
  if (it == backlog_.end()) return {};
  SpoolBacklog b = it->second;
  backlog_.erase(it);
  return b;
}

void UploadSpool::ReturnBacklog(const std::string& db_path, const std::string& replica_url) {
  const std::string dir = DirFor(db_path, replica_url);
  std::vector<SpoolEntry> v;
  if (!ScanDir(dir, &v).ok() || v.empty()) return;
  std::lock_guard<std::mutex> l(mu_);
  backlog_[BaseName(dir)] = BacklogOf(v);
}

Status UploadSpool::Append(const std::string& db_path, const std::string& replica_url, const SegmentHeader& h,
                           const std::string* data, const std::string* file) {
  uint64_t size = 0;
  if (data) {
    size = data->size();
  } else {
    struct stat st;
    if (::stat(file->c_str(), &st) != 0) return ErrnoStatus("spool: segment file " + *file, errno);
    size = uint64_t(st.st_size);
  }
  // Reserve first, so that concurrent appends cannot overshoot the cap.
  uint64_t cur = bytes_.load();
  do {
    if (cur + size > cap_)
      return Status::ResourceExhausted("spool " + dir_ + " is full (" + std::to_string(cur) + " of " +
                                       std::to_string(cap_) + " bytes, ReplicatorOptions::spool_cap)");
  } while (!bytes_.compare_exchange_weak(cur, cur + size));
  const std::string dir = DirFor(db_path, replica_url);
  char name[64];
  std::snprintf(name, sizeof name, "%s-%016" PRIx64 "-%016" PRIx64 ".seg", h.generation.c_str(), h.first_txid,
                h.last_txid);
  const std::string path = dir + "/" + name;
  Status s = MakeDirs(dir);
  if (s.ok()) {
    if (data) {
      s = WriteFileAtomic(path, *data);
    } else {
      ScopedFd fd;
      s = OpenFile(*file, O_RDONLY, 0, &fd);
      if (s.ok()) s = FSync(fd.get(), *file);
      if (s.ok() && ::rename(file->c_str(), path.c_str()) != 0) s = ErrnoStatus("spool: rename " + *file, errno);
      if (s.ok()) s = FSyncDir(dir);
    }
  }
  if (!s.ok()) {
    bytes_ -= size;
    return s.Annotate("spool: ");
  }
  entries_++;
  return Status::OK();
}

Status UploadSpool::List(const std::string& db_path, const std::string& replica_url, std::vector<SpoolEntry>* out) {
  return ScanDir(DirFor(db_path, replica_url), out);
}

void UploadSpool::Remove(const SpoolEntry& e) {
  if (::unlink(e.path.c_str()) != 0) return;
  bytes_ -= std::min(bytes_.load(), e.bytes);
  if (entries_ > 0) entries_--;
  ::rmdir(DirName(e.path).c_str());  // fails (harmlessly) while entries remain
}

uint64_t UploadSpool::MemoryBytes() {
  std::lock_guard<std::mutex> l(mu_);
  uint64_t b = HashTableHeap(backlog_.bucket_count(), backlog_.size(), 8 + sizeof(std::string) + sizeof(SpoolBacklog) + 8);
  for (const auto& [dir, backlog] : backlog_) b += StringHeap(dir);
  return b;
}

}  // namespace replite
