#include "store/s3/flat_json.h"

#include <cctype>

namespace replite::s3 {
namespace {

struct Reader {
  std::string_view d;
  size_t i = 0;
  void Ws() {
    while (i < d.size() && std::isspace(static_cast<unsigned char>(d[i]))) i++;
  }
  bool Eat(char c) {
    Ws();
    if (i < d.size() && d[i] == c) {
      i++;
      return true;
    }
    return false;
  }
  static void Utf8(unsigned cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    out->clear();
    while (i < d.size()) {
      char c = d[i++];
      if (c == '"') return true;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i >= d.size()) return false;
      char e = d[i++];
      switch (e) {
        case '"': case '\\': case '/': out->push_back(e); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          if (i + 4 > d.size()) return false;
          unsigned cp = 0;
          for (int k = 0; k < 4; k++) {
            char h = d[i++];
            if (!std::isxdigit(static_cast<unsigned char>(h))) return false;
            cp = cp * 16 + static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
          }
          Utf8(cp, out);  // surrogate pairs are not expected in credentials
          break;
        }
        default: return false;
      }
    }
    return false;
  }
  // Skips a nested object or array (strings inside may hold brackets).
  bool SkipNested() {
    int depth = 0;
    std::string ignored;
    while (i < d.size()) {
      char c = d[i];
      if (c == '"') {
        if (!String(&ignored)) return false;
        continue;
      }
      i++;
      if (c == '{' || c == '[') depth++;
      if (c == '}' || c == ']') {
        if (--depth == 0) return true;
      }
    }
    return false;
  }
  bool Value(std::string* out) {
    Ws();
    if (i >= d.size()) return false;
    if (d[i] == '"') return String(out);
    if (d[i] == '{' || d[i] == '[') {
      out->clear();
      return SkipNested();
    }
    size_t b = i;
    while (i < d.size() && (std::isalnum(static_cast<unsigned char>(d[i])) || d[i] == '-' || d[i] == '+' || d[i] == '.')) i++;
    if (i == b) return false;
    *out = std::string(d.substr(b, i - b));
    if (*out == "null") out->clear();
    return true;
  }
};

}  // namespace

Status ParseFlatJson(std::string_view doc, std::map<std::string, std::string>* out) {
  out->clear();
  Reader r{doc};
  if (!r.Eat('{')) return Status::Corruption("expected a JSON object");
  if (r.Eat('}')) return Status::OK();
  do {
    std::string k, v;
    if (!r.String(&k)) return Status::Corruption("expected a quoted member name in the JSON object");
    if (!r.Eat(':')) return Status::Corruption("expected ':' after JSON member '" + k + "'");
    if (!r.Value(&v)) return Status::Corruption("malformed value of JSON member '" + k + "'");
    (*out)[k] = std::move(v);
  } while (r.Eat(','));
  if (!r.Eat('}')) return Status::Corruption("expected ',' or '}' in the JSON object");
  r.Ws();
  if (r.i != doc.size()) return Status::Corruption("trailing bytes after the JSON object");
  return Status::OK();
}

}  // namespace replite::s3
