#include "core/instance.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "format/layout.h"

namespace replite {

Status OpenInstance(const std::string& state_dir, Instance* out) {
  const std::string lock_path = state_dir + "/lock";
  Status s = OpenFile(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600, &out->lock);
  if (!s.ok()) return s.Annotate("state_dir: ");
  if (::flock(out->lock.get(), LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    ReadFileToString(lock_path, &holder);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    if (err == EWOULDBLOCK)
      return Status::FailedPrecondition("state_dir " + state_dir + " is in use by another Replicator (" +
                                        (holder.empty() ? std::string("pid unknown") : holder) +
                                        "): give each replite process (and each Replicator) its own state_dir "
                                        "(CLI: -state), or stop the other one");
    return ErrnoStatus("lock " + lock_path, err);
  }
  out->pid = int(::getpid());
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  out->host = host[0] ? host : "unknown-host";
  const std::string who = "pid " + std::to_string(out->pid) + " on " + out->host + "\n";
  if (::ftruncate(out->lock.get(), 0) == 0) PWriteAll(out->lock.get(), who.data(), who.size(), 0, lock_path);

  const std::string id_path = state_dir + "/instance-id";
  std::string id;
  s = ReadFileToString(id_path, &id);
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  bool valid = id.size() == 16;
  for (char c : id) valid &= (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  if (!s.ok() || !valid) {
    if (!s.ok() && s.code() != Code::kNotFound) return s.Annotate("state_dir: ");
    std::random_device rd;
    const uint64_t v = (uint64_t(rd()) << 32 | rd()) | 1;
    id = Hex16(v);
    s = WriteFileAtomic(id_path, id + "\n");
    if (!s.ok()) return s.Annotate("state_dir: ");
  }
  out->id = id;
  return Status::OK();
}

}  // namespace replite
