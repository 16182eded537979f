#include "core/spool_sink.h"

#include <fcntl.h>
#include <unistd.h>

namespace replite {

Status FileSink::Open(const std::string& path) {
  path_ = path;
  size_ = 0;
  return OpenFile(path, O_RDWR | O_CREAT | O_TRUNC, 0600, &fd_);
}

Status FileSink::Append(const std::string& d) {
  Status s = PWriteAll(fd_.get(), d.data(), d.size(), size_, path_);
  if (s.ok()) size_ += d.size();
  return s;
}

Status FileSink::WriteAt(uint64_t off, const std::string& d) { return PWriteAll(fd_.get(), d.data(), d.size(), off, path_); }

SegmentOut::~SegmentOut() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

Status SegmentOut::Open(uint64_t raw_estimate, uint64_t memory_limit_bytes, const std::string& spool_dir) {
  if (raw_estimate <= memory_limit_bytes) return Status::OK();
  Status s = MakeDirs(spool_dir);
  if (!s.ok()) return s;
  path_ = spool_dir + "/segment" + TempSuffix();
  file_ = std::make_unique<FileSink>();
  return file_->Open(path_);
}

void SegmentOut::MoveTo(std::string* bytes, std::string* path) {
  if (file_) {
    file_.reset();
    *path = path_;
    path_.clear();
  } else {
    *bytes = std::move(mem_.buffer());
  }
}

}  // namespace replite
