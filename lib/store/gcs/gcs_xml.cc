#include "store/gcs/gcs_xml.h"

namespace replite::gcs {

Status ParseListPage(std::string_view doc, s3::ListPage* out) {
  Status s = s3::ParseListObjectsV2(doc, out);
  if (!s.ok()) return s;
  s3::XmlNode root;
  if (!(s = s3::ParseXml(doc, &root)).ok()) return s;
  size_t i = 0;
  for (const auto& c : root.children) {
    if (c.name != "Contents") continue;
    const std::string gen = c.ChildText("Generation");
    if (gen.empty() || gen.find_first_not_of("0123456789") != std::string::npos || i >= out->objects.size())
      return Status::Corruption("GCS list: <Contents> for key '" + c.ChildText("Key") +
                                "' without a <Generation>: is the endpoint Google Cloud Storage?");
    out->objects[i++].etag = gen;
  }
  return Status::OK();
}

}  // namespace replite::gcs
