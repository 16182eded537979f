// Account SAS tokens for tests (the blob service, every resource type,
// permissions rwdlac), signed with a Shared Key the way the Azure portal
// does, so the SAS path of the store is verified by azurite.
#pragma once

#include <string>

#include "store/azure/azure_credentials.h"

namespace replite::testing {

// A SAS query string (no '?') valid until expiry ("2030-01-01T00:00:00Z").
std::string AccountSas(const azure::Credentials& key, const std::string& expiry);

}  // namespace replite::testing
