#include "store/file_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>

#include "util/file_util.h"

namespace replite {
namespace {

class FileStore final : public ObjectStore {
 public:
  explicit FileStore(std::string root) : root_(std::move(root)) {
    if (root_.empty() || root_.back() != '/') root_ += '/';
  }

  Status Put(const std::string& key, const std::string& data, const PutOptions& opts,
             std::string* etag) override {
    const std::string path = Path(key);
    Status s = MakeDirs(DirName(path));
    if (!s.ok()) return s;
    s = CheckCondition(path, opts);
    if (!s.ok()) return s;
    s = WriteFileAtomic(path, data);
    if (s.ok() && etag) *etag = EtagOf(path);
    return s;
  }

  Status PutFile(const std::string& key, const std::string& local_path, const PutOptions& opts) override {
    const std::string path = Path(key);
    Status s = MakeDirs(DirName(path));
    if (!s.ok()) return s;
    s = CheckCondition(path, opts);
    if (!s.ok()) return s;
    ScopedFd in;
    s = OpenFile(local_path, O_RDONLY, 0, &in);
    if (!s.ok()) return s;
    const std::string tmp = path + TempSuffix();
    if (opts.consumes_source) {
      // The caller's file becomes the object (no second copy of a segment
      // that may be gigabytes): made durable, linked under a temporary
      // name, renamed into place. Across filesystems (or where links are
      // refused) the bytes are copied as below.
      s = FSync(in.get(), local_path);
      if (!s.ok()) return s;
      if (::link(local_path.c_str(), tmp.c_str()) == 0) {
        if (::rename(tmp.c_str(), path.c_str()) != 0) {
          s = ErrnoStatus("rename " + tmp, errno);
          ::unlink(tmp.c_str());
          return s;
        }
        return FSyncDir(DirName(path));
      }
    }
    ScopedFd out;
    s = OpenFile(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600, &out);
    if (!s.ok()) return s;
    std::string buf(1 << 20, '\0');
    uint64_t off = 0;
    for (;;) {
      size_t got = 0;
      s = PRead(in.get(), buf.data(), buf.size(), off, &got, local_path);
      if (!s.ok() || got == 0) break;
      s = WriteAll(out.get(), buf.data(), got, tmp);
      if (!s.ok()) break;
      off += got;
    }
    if (s.ok()) s = FSync(out.get(), tmp);
    out.Reset();
    if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoStatus("rename " + tmp, errno);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    return FSyncDir(DirName(path));
  }

  Status Get(const std::string& key, std::string* out, uint64_t offset, uint64_t length) override {
    const std::string path = Path(key);
    ScopedFd fd;
    Status s = OpenFile(path, O_RDONLY, 0, &fd);
    if (!s.ok()) return s.code() == Code::kNotFound ? Status::NotFound("object " + Describe() + key + " not found") : s;
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat " + path, errno);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    out->clear();
    if (offset >= size) return Status::OK();
    uint64_t n = std::min<uint64_t>(length, size - offset);
    out->resize(n);
    size_t got = 0;
    s = PRead(fd.get(), out->data(), n, offset, &got, path);
    out->resize(got);
    return s;
  }

  Status Head(const std::string& key, ObjectInfo* out) override {
    struct stat st;
    const std::string path = Path(key);
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return Status::NotFound("object " + Describe() + key + " not found");
      return ErrnoStatus("stat " + path, errno);
    }
    out->key = key;
    out->size = static_cast<uint64_t>(st.st_size);
    out->mtime_ms = int64_t(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
    out->etag = EtagOf(path);
    return Status::OK();
  }

  Status List(const std::string& prefix, std::vector<ObjectInfo>* out) override {
    out->clear();
    // Walk the deepest directory that the prefix names completely.
    std::string dir_key = prefix.substr(0, prefix.find_last_of('/') == std::string::npos ? 0 : prefix.find_last_of('/') + 1);
    Status s = Walk(dir_key, prefix, out);
    std::sort(out->begin(), out->end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return s;
  }

  // Temporary files (".tmp-" names) of writes that never finished: a
  // writer killed between creating and renaming one.
  Status RemoveAbandoned(const std::string& prefix, int64_t older_than_ms, uint64_t* removed) override {
    if (removed) *removed = 0;
    std::vector<ObjectInfo> temps;
    std::string dir_key = prefix.substr(0, prefix.find_last_of('/') == std::string::npos ? 0 : prefix.find_last_of('/') + 1);
    Status s = Walk(dir_key, prefix, &temps, /*temporaries=*/true);
    if (!s.ok()) return s;
    for (const auto& t : temps) {
      if (t.mtime_ms >= older_than_ms) continue;  // maybe a write in progress
      const std::string path = root_ + t.key;
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("remove abandoned " + path, errno);
      if (removed) (*removed)++;
    }
    return Status::OK();
  }

  Status Delete(const std::vector<std::string>& keys) override {
    for (const auto& k : keys) {
      const std::string path = Path(k);
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("delete " + path, errno);
      // Remove now-empty parent directories (best effort), so deleted
      // generations do not leave empty folders behind.
      std::string dir = DirName(path);
      while (dir.size() > root_.size() && ::rmdir(dir.c_str()) == 0) dir = DirName(dir);
    }
    return Status::OK();
  }

  std::string Describe() const override { return "file://" + root_; }

 private:
  std::string Path(const std::string& key) const { return root_ + key; }

  static std::string EtagOf(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return "";
    return std::to_string(st.st_ino) + "-" + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec) + "-" + std::to_string(st.st_size);
  }

  Status CheckCondition(const std::string& path, const PutOptions& opts) {
    // Conditional writes on a local directory are advisory (a check then a
    // rename): enough for one process; leases across hosts need S3.
    if (opts.if_none_match && FileExists(path))
      return Status::FailedPrecondition("object " + path + " already exists (If-None-Match)");
    if (!opts.if_match.empty() && EtagOf(path) != opts.if_match)
      return Status::FailedPrecondition("object " + path + " changed (If-Match)");
    return Status::OK();
  }

  // Objects under `prefix`; with `temporaries`, the unfinished writes'
  // temporary files instead.
  Status Walk(const std::string& dir_key, const std::string& prefix, std::vector<ObjectInfo>* out,
              bool temporaries = false) {
    const std::string dir = root_ + dir_key;
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
      if (errno == ENOENT || errno == ENOTDIR) return Status::OK();
      return ErrnoStatus("list " + dir, errno);
    }
    Status s;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      const bool temp = name.find(".tmp-") != std::string::npos;  // an unfinished write
      std::string key = dir_key + name;
      struct stat st;
      if (::stat((root_ + key).c_str(), &st) != 0) continue;  // deleted meanwhile
      if (S_ISDIR(st.st_mode)) {
        std::string sub = key + "/";
        // Descend only where the prefix can still match.
        if (sub.compare(0, std::min(sub.size(), prefix.size()), prefix, 0, std::min(sub.size(), prefix.size())) == 0) {
          s = Walk(sub, prefix, out, temporaries);
          if (!s.ok()) break;
        }
      } else if (temp == temporaries && key.compare(0, prefix.size(), prefix) == 0) {
        ObjectInfo info;
        info.key = key;
        info.size = static_cast<uint64_t>(st.st_size);
        info.mtime_ms = int64_t(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
        out->push_back(std::move(info));
      }
    }
    ::closedir(d);
    return s;
  }

  std::string root_;
};

}  // namespace

std::shared_ptr<ObjectStore> NewFileStore(const std::string& root) { return std::make_shared<FileStore>(root); }

}  // namespace replite
