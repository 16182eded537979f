// Instance: who this Replicator is, to other replite processes. Holds the
// state directory for the life of the Replicator (an exclusive flock on
// state_dir/lock: two processes sharing one state dir would share positions
// and a lease identity, so the second is refused with an error naming the
// first's pid) and a random instance id persisted in state_dir/instance-id,
// so that a restarted process keeps the leases it held (see replica/lease.h).
#pragma once

#include <string>

#include "replite/status.h"
#include "util/file_util.h"

namespace replite {

struct Instance {
  std::string id;    // 16 lowercase hex digits
  std::string host;  // gethostname(), for error messages only
  int pid = 0;
  ScopedFd lock;     // state_dir/lock, flock(LOCK_EX) while open
};

Status OpenInstance(const std::string& state_dir, Instance* out);

}  // namespace replite
