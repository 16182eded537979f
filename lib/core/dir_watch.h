// DirWatch: change-driven wakeups for polled databases (issue 13, item 2).
// One inotify descriptor for the process, one watch per *directory* holding
// databases (not per file: 100,000 databases in a few directories cost a
// few watches), one thread reading events. A write to a watched directory's
// file reaches the callback with the file's full path within milliseconds,
// so a database that went idle (its poll backed off to 30 s) is synced as
// soon as it is written again. Polling stays on as the fallback: when the
// kernel's watch limit (fs.inotify.max_user_watches) is reached, Watch
// returns false and that directory is only polled.
//
// Thread-safety: every method may be called from any thread; the callback
// runs on the watcher's thread and must not block.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "replite/status.h"

namespace replite {

class DirWatch {
 public:
  using Callback = std::function<void(const std::string& dir, const char* name)>;

  DirWatch() = default;
  DirWatch(const DirWatch&) = delete;
  DirWatch& operator=(const DirWatch&) = delete;
  ~DirWatch() { Stop(); }

  Status Start(Callback cb);
  // Adds a reference to `dir`'s watch (one watch per directory). False if
  // no watch could be added (not started, or the kernel's limit): poll it.
  bool Watch(const std::string& dir, std::string* why);
  void Unwatch(const std::string& dir);
  void Stop();
  size_t watches() const;

 private:
  void Loop();

  Callback cb_;
  int fd_ = -1;
  int stop_fd_ = -1;  // eventfd that wakes the thread for Stop
  std::thread thread_;
  mutable std::mutex mu_;
  struct Entry {
    int wd = -1;
    int refs = 0;
  };
  std::unordered_map<std::string, Entry> by_dir_;
  std::unordered_map<int, std::string> by_wd_;
};

}  // namespace replite
