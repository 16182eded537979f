// The XML documents the Azure Blob store reads and writes: a List Blobs
// page (EnumerationResults) and a Put Block List body. Parsing goes through
// the strict reader of s3_xml.h; malformed input is kCorruption.
//
// Thread-safety: stateless functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "replite/status.h"
#include "replite/sys/object_store.h"

namespace replite::azure {

struct ListBlobsPage {
  std::vector<ObjectInfo> objects;
  std::string next_marker;  // "" on the last page
};
Status ParseListBlobs(std::string_view doc, ListBlobsPage* out);

// <BlockList><Latest>id</Latest>...</BlockList>, ids already base64.
std::string BuildBlockList(const std::vector<std::string>& block_ids);

}  // namespace replite::azure
