// Conditional manifest updates: read (with its etag), edit, write back only
// if nobody wrote it meanwhile (If-Match; If-None-Match when it did not
// exist), re-reading and re-editing on a lost race. Two writers can then
// never silently drop each other's changes (a generation one of them
// appended, or the `deleting` list of a retention run). Before each write
// `fence` runs (the lease check of replica/lease.h): a writer that lost its
// lease stops instead of writing.
#pragma once

#include <functional>
#include <string>

#include "replica/manifest.h"
#include "replite/status.h"
#include "replite/sys/object_store.h"

namespace replite {

// `edit` receives the current manifest (generations from a LIST when no
// manifest exists yet) and changes it; returning false leaves it unwritten.
Status UpdateManifest(ObjectStore* store, const std::string& prefix, const std::function<bool(Manifest*)>& edit,
                      const std::function<Status()>& fence = nullptr);

}  // namespace replite
