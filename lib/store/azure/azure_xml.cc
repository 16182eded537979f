#include "store/azure/azure_xml.h"

#include <cstdlib>

#include "store/http_store_util.h"
#include "store/s3/s3_xml.h"

namespace replite::azure {

Status ParseListBlobs(std::string_view doc, ListBlobsPage* out) {
  *out = ListBlobsPage();
  s3::XmlNode root;
  Status s = s3::ParseXml(doc, &root);
  if (!s.ok()) return s.Annotate("List Blobs: ");
  if (root.name != "EnumerationResults")
    return Status::Corruption("List Blobs: expected <EnumerationResults>, got <" + root.name + ">");
  if (const s3::XmlNode* blobs = root.Child("Blobs")) {
    for (const s3::XmlNode& b : blobs->children) {
      if (b.name != "Blob") continue;  // BlobPrefix only with a delimiter, which we never send
      ObjectInfo o;
      o.key = b.ChildText("Name");
      if (o.key.empty()) return Status::Corruption("List Blobs: a <Blob> without a <Name>");
      if (const s3::XmlNode* p = b.Child("Properties")) {
        const std::string len = p->ChildText("Content-Length");
        char* end = nullptr;
        o.size = std::strtoull(len.c_str(), &end, 10);
        if (len.empty() || *end != '\0')
          return Status::Corruption("List Blobs: blob '" + o.key + "' has no valid <Content-Length>");
        o.etag = p->ChildText("Etag");
        o.mtime_ms = ParseHttpDateMs(p->ChildText("Last-Modified"));
      }
      out->objects.push_back(std::move(o));
    }
  }
  out->next_marker = root.ChildText("NextMarker");
  return Status::OK();
}

std::string BuildBlockList(const std::vector<std::string>& block_ids) {
  std::string x = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
  for (const auto& id : block_ids) x += "<Latest>" + s3::XmlEscape(id) + "</Latest>";
  return x + "</BlockList>";
}

}  // namespace replite::azure
