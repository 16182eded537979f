// The XML that S3 speaks: a small, strict reader (elements, text, entities,
// CDATA, comments, declarations; attributes are skipped) and the few
// documents the store reads and writes. Malformed input is kCorruption
// naming what was wrong, never a crash or a silently empty result.
//
// Thread-safety: stateless functions, safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "replite/status.h"
#include "replite/sys/object_store.h"

namespace replite::s3 {

struct XmlNode {
  std::string name;  // local name (any "prefix:" removed)
  std::string text;  // concatenated character data directly inside
  std::vector<XmlNode> children;

  const XmlNode* Child(std::string_view name) const;  // first child so named
  std::string ChildText(std::string_view name) const;  // "" if absent
};

Status ParseXml(std::string_view doc, XmlNode* root);
std::string XmlEscape(std::string_view s);

// ListObjectsV2 result, one page.
struct ListPage {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_token;  // NextContinuationToken
};
Status ParseListObjectsV2(std::string_view doc, ListPage* out);

// <Error><Code>..</Code><Message>..</Message></Error>. Returns false when
// the body is not such a document (empty, HTML from a proxy, ...).
struct S3Error {
  std::string code;
  std::string message;
  std::string request_id;
};
bool ParseS3Error(std::string_view doc, S3Error* out);

Status ParseInitiateMultipartUpload(std::string_view doc, std::string* upload_id);
// CompleteMultipartUpload can answer 200 with an <Error> body: the caller
// checks ParseS3Error first; this reads the final ETag.
Status ParseCompleteMultipartUpload(std::string_view doc, std::string* etag);

// DeleteObjects: the request body (Quiet mode) and the per-key errors of the
// result. Policy follows `code`, never the text (a key may contain anything).
struct DeleteError {
  std::string key, code, message;
  std::string Text() const { return key + ": " + code + ": " + message; }
};
std::string BuildDeleteObjects(const std::vector<std::string>& keys, size_t begin, size_t end);
Status ParseDeleteResult(std::string_view doc, std::vector<DeleteError>* errors);

std::string BuildCompleteMultipartUpload(const std::vector<std::string>& part_etags);

// ListMultipartUploads result, one page.
struct MultipartUpload {
  std::string key;
  std::string upload_id;
  int64_t initiated_ms = 0;
};
struct UploadsPage {
  std::vector<MultipartUpload> uploads;
  bool truncated = false;
  std::string next_key_marker, next_upload_id_marker;
};
Status ParseListMultipartUploads(std::string_view doc, UploadsPage* out);

// "2009-10-12T17:50:30.000Z" → ms since the epoch; 0 if unparsable.
int64_t ParseIso8601Ms(std::string_view s);

}  // namespace replite::s3
