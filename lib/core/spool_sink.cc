#include "core/spool_sink.h"

#include <fcntl.h>
#include <unistd.h>

namespace replite {

Status FileSink::Open(const std::string& path) {
  path_ = path;
  size_ = 0;
  writeback_from_ = 0;
  return OpenFile(path, O_RDWR | O_CREAT | O_TRUNC, 0600, &fd_);
}

Status FileSink::Append(const char* d, size_t n) {
  Status s = PWriteAll(fd_.get(), d, n, size_, path_);
  if (!s.ok()) return s;
  size_ += n;
  if (size_ - writeback_from_ >= kWritebackBytes) {
    // Best effort: an error here changes nothing (the fsync before the
    // object is published still writes and checks everything).
    (void)::sync_file_range(fd_.get(), static_cast<off_t>(writeback_from_), static_cast<off_t>(size_ - writeback_from_),
                            SYNC_FILE_RANGE_WRITE);
    writeback_from_ = size_;
  }
  return Status::OK();
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
