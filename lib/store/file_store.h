// FileStore: the file:// backend. Objects are plain files under a root
// directory; writes go to a temporary file in the same directory, are
// fsynced, renamed into place, and the directory is fsynced, so a reader
// (or a crash) sees the whole object or nothing.
//
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <memory>
#include <string>

#include "replite/sys/object_store.h"

namespace replite {

// root: absolute directory that keys are relative to ("/" for file:// URLs).
std::shared_ptr<ObjectStore> NewFileStore(const std::string& root);

}  // namespace replite
