// The store conformance suite: one set of checks that every ObjectStore
// backend must pass (file://, s3:// on moto, abs:// on azurite, sftp:// on
// sshd, gs:// on the fake GCS server), so a
// backend cannot quietly differ in what the replicator relies on: atomic
// puts, gets and ranged gets, list with paging, batch delete, conditional
// puts, error mapping with messages that name the fix, and no secret in
// any message.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "replite/sys/object_store.h"

namespace replite::testing {

// Stores under test are opened with StoreConfig::list_max_keys set to this,
// so listing 30 objects takes several pages.
constexpr int kConformancePageSize = 7;

struct ConformanceTarget {
  std::shared_ptr<ObjectStore> store;
  std::string prefix;  // every key goes below it; nothing there at the start
  // HTTP requests made so far (to count list pages); empty for stores
  // without HTTP.
  std::function<uint64_t()> requests;
  // The same store with wrong credentials; nullptr for stores without auth.
  std::shared_ptr<ObjectStore> bad_auth;
  std::vector<std::string> auth_fix;  // texts the auth error must hold (the fix)
  // Called with true before the bad_auth checks and false after, for
  // servers that check credentials only when told to (moto); may be empty.
  std::function<void(bool)> enforce_auth;
  // The store for a bucket/container that does not exist; nullptr when the
  // backend has no such thing.
  std::shared_ptr<ObjectStore> missing;
  std::string missing_fix;  // text that error must hold
  std::vector<std::string> secrets;  // must appear in no message
};

// Runs every check (Catch2 assertions) against the target.
void RunStoreConformance(const ConformanceTarget& t);

}  // namespace replite::testing
