// The one GCS XML API document the native gs:// store reads that S3's
// reader cannot give it whole: a ListObjectsV2 page whose <Contents> carry
// <Generation>, which the store reports as each object's version tag
// (ObjectInfo::etag), the number generation preconditions are made of.
// Errors (<Error><Code>) and multipart documents are read with
// store/s3/s3_xml.h, whose formats GCS shares.
//
// Thread-safety: stateless functions.
#pragma once

#include <string_view>

#include "replite/status.h"
#include "store/s3/s3_xml.h"

namespace replite::gcs {

// Like s3::ParseListObjectsV2, with etag = the object's generation; a
// <Contents> without a <Generation> is kCorruption (not GCS).
Status ParseListPage(std::string_view doc, s3::ListPage* out);

}  // namespace replite::gcs
