#include "core/dir_watch.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/file_util.h"

namespace replite {

// Appends to a file (a WAL commit), a file created or moved in.
constexpr uint32_t kMask = IN_MODIFY | IN_CREATE | IN_MOVED_TO;

Status DirWatch::Start(Callback cb) {
  cb_ = std::move(cb);
  fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) return ErrnoStatus("inotify_init1", errno);
  stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop_fd_ < 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    return ErrnoStatus("eventfd", err);
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::OK();
}

bool DirWatch::Watch(const std::string& dir, std::string* why) {
  std::lock_guard<std::mutex> l(mu_);
  if (fd_ < 0) {
    *why = "no inotify descriptor";
    return false;
  }
  Entry& e = by_dir_[dir];
  if (e.refs == 0) {
    const int wd = ::inotify_add_watch(fd_, dir.c_str(), kMask | IN_ONLYDIR);
    if (wd < 0) {
      *why = std::string("inotify_add_watch ") + dir + ": " + std::strerror(errno) +
             (errno == ENOSPC ? " (raise fs.inotify.max_user_watches)" : "");
      by_dir_.erase(dir);
      return false;
    }
    e.wd = wd;
    by_wd_[wd] = dir;
  }
  e.refs++;
  return true;
}

void DirWatch::Unwatch(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_dir_.find(dir);
  if (it == by_dir_.end() || --it->second.refs > 0) return;
  if (fd_ >= 0) ::inotify_rm_watch(fd_, it->second.wd);
  by_wd_.erase(it->second.wd);
  by_dir_.erase(it);
}

size_t DirWatch::watches() const {
  std::lock_guard<std::mutex> l(mu_);
  return by_dir_.size();
}

void DirWatch::Stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    if (::write(stop_fd_, &one, sizeof one) < 0) {
    }
    thread_.join();
  }
  std::lock_guard<std::mutex> l(mu_);
  if (fd_ >= 0) ::close(fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
  fd_ = stop_fd_ = -1;
  by_dir_.clear();
  by_wd_.clear();
}

void DirWatch::Loop() {
  alignas(inotify_event) char buf[16384];
  for (;;) {
    pollfd p[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    for (;;) {
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;  // EAGAIN: drained
      for (char* q = buf; q < buf + n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(q);
        q += sizeof(inotify_event) + ev->len;
        if (ev->len == 0 || (ev->mask & IN_Q_OVERFLOW)) continue;
        std::string dir;
        {
          std::lock_guard<std::mutex> l(mu_);
          auto it = by_wd_.find(ev->wd);
          if (it == by_wd_.end()) continue;
          dir = it->second;
        }
        cb_(dir, ev->name);
      }
    }
  }
}

}  // namespace replite
