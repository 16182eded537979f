#include "store/s3/s3_xml.h"

#include <cstdio>
#include <ctime>

namespace replite::s3 {
namespace {

constexpr size_t kMaxDepth = 64;  // S3 documents are 3-4 levels deep

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.' || c == ':' || static_cast<unsigned char>(c) >= 0x80;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class Parser {
 public:
  explicit Parser(std::string_view d) : d_(d) {}

  Status Parse(XmlNode* root) {
    SkipMisc();
    if (!Peek('<')) return Bad("expected a root element");
    Status s = Element(root, 0);
    if (!s.ok()) return s;
    SkipMisc();
    if (i_ != d_.size()) return Bad("content after the root element");
    return Status::OK();
  }

 private:
  Status Bad(const std::string& why) const {
    return Status::Corruption("malformed XML from the store at byte " + std::to_string(i_) + ": " + why);
  }
  bool Peek(char c) const { return i_ < d_.size() && d_[i_] == c; }
  bool StartsWith(std::string_view s) const { return d_.substr(i_, s.size()) == s; }
  void SkipWs() {
    while (i_ < d_.size() && (d_[i_] == ' ' || d_[i_] == '\t' || d_[i_] == '\r' || d_[i_] == '\n')) i_++;
  }
  // Whitespace, <?...?> declarations, <!-- comments --> and <!DOCTYPE>.
  void SkipMisc() {
    while (true) {
      SkipWs();
      if (StartsWith("<?")) {
        size_t e = d_.find("?>", i_);
        i_ = e == std::string_view::npos ? d_.size() : e + 2;
      } else if (StartsWith("<!--")) {
        size_t e = d_.find("-->", i_);
        i_ = e == std::string_view::npos ? d_.size() : e + 3;
      } else if (StartsWith("<!DOCTYPE")) {
        size_t e = d_.find('>', i_);
        i_ = e == std::string_view::npos ? d_.size() : e + 1;
      } else {
        return;
      }
    }
  }
  Status Name(std::string* out) {
    size_t b = i_;
    while (i_ < d_.size() && IsNameChar(d_[i_])) i_++;
    if (b == i_) return Bad("expected a name");
    *out = std::string(d_.substr(b, i_ - b));
    return Status::OK();
  }
  Status Text(char stop, std::string* out) {
    while (i_ < d_.size() && d_[i_] != stop) {
      if (d_[i_] != '&') {
        out->push_back(d_[i_++]);
        continue;
      }
      size_t semi = d_.find(';', i_);
      if (semi == std::string_view::npos || semi - i_ > 12) return Bad("unterminated entity");
      std::string_view ent = d_.substr(i_ + 1, semi - i_ - 1);
      if (ent == "amp") out->push_back('&');
      else if (ent == "lt") out->push_back('<');
      else if (ent == "gt") out->push_back('>');
      else if (ent == "quot") out->push_back('"');
      else if (ent == "apos") out->push_back('\'');
      else if (!ent.empty() && ent[0] == '#') {
        bool hex = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X');
        std::string digits(ent.substr(hex ? 2 : 1));
        if (digits.empty()) return Bad("empty character reference");
        uint32_t cp = 0;
        for (char c : digits) {
          int v = (c >= '0' && c <= '9') ? c - '0'
                  : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                : -1;
          if (v < 0) return Bad("bad character reference");
          cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
          if (cp > 0x10FFFF) return Bad("character reference out of range");
        }
        AppendUtf8(cp, out);
      } else {
        return Bad("unknown entity '&" + std::string(ent) + ";'");
      }
      i_ = semi + 1;
    }
    return Status::OK();
  }
  Status Element(XmlNode* node, size_t depth) {
    if (depth > kMaxDepth) return Bad("nesting too deep");
    i_++;  // '<'
    std::string qname;
    Status s = Name(&qname);
    if (!s.ok()) return s;
    size_t colon = qname.rfind(':');
    node->name = colon == std::string::npos ? qname : qname.substr(colon + 1);
    if (node->name.empty()) return Bad("element with an empty name <" + qname + ">");
    // Attributes: parsed for well-formedness, then dropped (S3 only puts
    // xmlns there).
    while (true) {
      SkipWs();
      if (i_ >= d_.size()) return Bad("unterminated start tag <" + qname + ">");
      if (StartsWith("/>")) {
        i_ += 2;
        return Status::OK();
      }
      if (Peek('>')) {
        i_++;
        break;
      }
      std::string attr, ignored;
      if (!(s = Name(&attr)).ok()) return s;
      SkipWs();
      if (!Peek('=')) return Bad("attribute without value");
      i_++;
      SkipWs();
      if (!Peek('"') && !Peek('\'')) return Bad("unquoted attribute value");
      char q = d_[i_++];
      if (!(s = Text(q, &ignored)).ok()) return s;
      if (!Peek(q)) return Bad("unterminated attribute value");
      i_++;
    }
    // Content.
    while (true) {
      if (i_ >= d_.size()) return Bad("missing </" + qname + ">");
      if (StartsWith("</")) {
        i_ += 2;
        std::string end;
        if (!(s = Name(&end)).ok()) return s;
        if (end != qname) return Bad("</" + end + "> closes <" + qname + ">");
        SkipWs();
        if (!Peek('>')) return Bad("bad end tag");
        i_++;
        return Status::OK();
      }
      if (StartsWith("<!--")) {
        size_t e = d_.find("-->", i_);
        if (e == std::string_view::npos) return Bad("unterminated comment");
        i_ = e + 3;
      } else if (StartsWith("<![CDATA[")) {
        size_t e = d_.find("]]>", i_);
        if (e == std::string_view::npos) return Bad("unterminated CDATA");
        node->text.append(d_.substr(i_ + 9, e - i_ - 9));
        i_ = e + 3;
      } else if (StartsWith("<?")) {
        size_t e = d_.find("?>", i_);
        if (e == std::string_view::npos) return Bad("unterminated processing instruction");
        i_ = e + 2;
      } else if (Peek('<')) {
        node->children.emplace_back();
        if (!(s = Element(&node->children.back(), depth + 1)).ok()) return s;
      } else {
        if (!(s = Text('<', &node->text)).ok()) return s;
      }
    }
  }

  std::string_view d_;
  size_t i_ = 0;
};

uint64_t ParseU64(const std::string& s, bool* ok) {
  *ok = !s.empty() && s.size() <= 20;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      *ok = false;
      return 0;
    }
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) {  // would overflow: not a size S3 sends
      *ok = false;
      return 0;
    }
    v = v * 10 + d;
  }
  return v;
}

Status Expect(const XmlNode& root, const char* name) {
  if (root.name == name) return Status::OK();
  return Status::Corruption(std::string("unexpected XML from the store: <") + root.name + "> where <" + name +
                            "> was expected");
}

}  // namespace

const XmlNode* XmlNode::Child(std::string_view n) const {
  for (const auto& c : children)
    if (c.name == n) return &c;
  return nullptr;
}

std::string XmlNode::ChildText(std::string_view n) const {
  const XmlNode* c = Child(n);
  return c ? c->text : std::string();
}

Status ParseXml(std::string_view doc, XmlNode* root) {
  *root = XmlNode();
  return Parser(doc).Parse(root);
}

std::string XmlEscape(std::string_view s) {
  std::string r;
  r.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': r += "&amp;"; break;
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '"': r += "&quot;"; break;
      case '\'': r += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          char buf[8];
          snprintf(buf, sizeof buf, "&#%d;", c);
          r += buf;
        } else {
          r.push_back(c);
        }
    }
  }
  return r;
}

int64_t ParseIso8601Ms(std::string_view s) {
  int y, mo, d, h, mi, sec;
  int ms = 0;
  std::string str(s);
  if (sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6) return 0;
  size_t dot = str.find('.');
  if (dot != std::string::npos) {
    int digits = 0;
    for (size_t i = dot + 1; i < str.size() && str[i] >= '0' && str[i] <= '9' && digits < 3; i++, digits++)
      ms = ms * 10 + (str[i] - '0');
    while (digits++ < 3) ms *= 10;
  }
  struct tm tm = {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

Status ParseListMultipartUploads(std::string_view doc, UploadsPage* out) {
  *out = UploadsPage();
  XmlNode root;
  Status s = ParseXml(doc, &root);
  if (!s.ok()) return s;
  if (root.name != "ListMultipartUploadsResult")
    return Status::Corruption("ListMultipartUploads: expected <ListMultipartUploadsResult>, got <" + root.name + ">");
  for (const auto& c : root.children) {
    if (c.name != "Upload") continue;
    MultipartUpload u;
    u.key = c.ChildText("Key");
    u.upload_id = c.ChildText("UploadId");
    u.initiated_ms = ParseIso8601Ms(c.ChildText("Initiated"));
    if (u.key.empty() || u.upload_id.empty())
      return Status::Corruption("ListMultipartUploads: an <Upload> without <Key> or <UploadId>");
    out->uploads.push_back(std::move(u));
  }
  out->truncated = root.ChildText("IsTruncated") == "true";
  out->next_key_marker = root.ChildText("NextKeyMarker");
  out->next_upload_id_marker = root.ChildText("NextUploadIdMarker");
  if (out->truncated && out->next_key_marker.empty())
    return Status::Corruption("ListMultipartUploads: truncated page without <NextKeyMarker>");
  return Status::OK();
}

Status ParseListObjectsV2(std::string_view doc, ListPage* out) {
  *out = ListPage();
  XmlNode root;
  Status s = ParseXml(doc, &root);
  if (!s.ok()) return s.Annotate("ListObjectsV2: ");
  if (!(s = Expect(root, "ListBucketResult")).ok()) return s;
  for (const auto& c : root.children) {
    if (c.name == "Contents") {
      ObjectInfo o;
      o.key = c.ChildText("Key");
      if (o.key.empty()) return Status::Corruption("ListObjectsV2: <Contents> without <Key>");
      bool ok;
      o.size = ParseU64(c.ChildText("Size"), &ok);
      if (!ok) return Status::Corruption("ListObjectsV2: bad <Size> for key '" + o.key + "'");
      o.mtime_ms = ParseIso8601Ms(c.ChildText("LastModified"));
      o.etag = c.ChildText("ETag");
      out->objects.push_back(std::move(o));
    } else if (c.name == "CommonPrefixes") {
      out->common_prefixes.push_back(c.ChildText("Prefix"));
    }
  }
  out->truncated = root.ChildText("IsTruncated") == "true";
  out->next_token = root.ChildText("NextContinuationToken");
  if (out->truncated && out->next_token.empty())
    return Status::Corruption("ListObjectsV2: truncated page without <NextContinuationToken>");
  return Status::OK();
}

bool ParseS3Error(std::string_view doc, S3Error* out) {
  *out = S3Error();
  XmlNode root;
  if (!ParseXml(doc, &root).ok() || root.name != "Error") return false;
  out->code = root.ChildText("Code");
  out->message = root.ChildText("Message");
  out->request_id = root.ChildText("RequestId");
  return !out->code.empty();
}

Status ParseInitiateMultipartUpload(std::string_view doc, std::string* upload_id) {
  XmlNode root;
  Status s = ParseXml(doc, &root);
  if (!s.ok()) return s.Annotate("CreateMultipartUpload: ");
  if (!(s = Expect(root, "InitiateMultipartUploadResult")).ok()) return s;
  *upload_id = root.ChildText("UploadId");
  if (upload_id->empty()) return Status::Corruption("CreateMultipartUpload: no <UploadId> in the reply");
  return Status::OK();
}

Status ParseCompleteMultipartUpload(std::string_view doc, std::string* etag) {
  XmlNode root;
  Status s = ParseXml(doc, &root);
  if (!s.ok()) return s.Annotate("CompleteMultipartUpload: ");
  if (!(s = Expect(root, "CompleteMultipartUploadResult")).ok()) return s;
  *etag = root.ChildText("ETag");
  return Status::OK();
}

std::string BuildDeleteObjects(const std::vector<std::string>& keys, size_t begin, size_t end) {
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Delete><Quiet>true</Quiet>";
  for (size_t i = begin; i < end; i++) x += "<Object><Key>" + XmlEscape(keys[i]) + "</Key></Object>";
  x += "</Delete>";
  return x;
}

Status ParseDeleteResult(std::string_view doc, std::vector<DeleteError>* errors) {
  errors->clear();
  XmlNode root;
  Status s = ParseXml(doc, &root);
  if (!s.ok()) return s.Annotate("DeleteObjects: ");
  if (!(s = Expect(root, "DeleteResult")).ok()) return s;
  for (const auto& c : root.children)
    if (c.name == "Error")
      errors->push_back({c.ChildText("Key"), c.ChildText("Code"), c.ChildText("Message")});
  return Status::OK();
}

std::string BuildCompleteMultipartUpload(const std::vector<std::string>& part_etags) {
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload>";
  for (size_t i = 0; i < part_etags.size(); i++)
    x += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + XmlEscape(part_etags[i]) +
         "</ETag></Part>";
  x += "</CompleteMultipartUpload>";
  return x;
}

}  // namespace replite::s3
