#include "store/replica_url.h"

#include <cctype>
#include <set>

#include "util/redact.h"

namespace replite {
namespace {

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool PercentDecode(const std::string& in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); i++) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      int h = HexVal(in[i + 1]), l = HexVal(in[i + 2]);
      if (h < 0 || l < 0) return false;
      out->push_back(static_cast<char>(h * 16 + l));
      i += 2;
    } else {
      out->push_back(in[i]);
    }
  }
  return true;
}

std::string TrimSlashes(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && s[b] == '/') b++;
  while (e > b && s[e - 1] == '/') e--;
  return s.substr(b, e - b);
}

bool AllOf(const std::string& s, bool (*ok)(char)) {
  for (char c : s)
    if (!ok(c)) return false;
  return true;
}

// abs://[ACCOUNT@]CONTAINER[/PREFIX] (Litestream's form), with Azure's
// naming rules: an account is 3-24 lower-case letters and digits; a
// container 3-63 lower-case letters, digits and single hyphens, starting
// and ending with a letter or digit.
Status ParseAbsAuthority(const std::string& path, ReplicaUrl* out) {
  const size_t slash = path.find('/');
  std::string authority = path.substr(0, slash);
  if (size_t at = authority.find('@'); at != std::string::npos) {
    out->account = authority.substr(0, at);
    authority = authority.substr(at + 1);
    if (out->account.size() < 3 || out->account.size() > 24 ||
        !AllOf(out->account, [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }))
      return Status::InvalidArgument("storage account name must be 3 to 24 lower-case letters and digits: "
                                     "abs://ACCOUNT@CONTAINER/prefix");
  }
  out->bucket = authority;
  if (authority.empty()) return Status::InvalidArgument("missing container: abs://ACCOUNT@CONTAINER/prefix");
  if (authority.size() < 3 || authority.size() > 63 ||
      !AllOf(authority, [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }) ||
      authority.front() == '-' || authority.back() == '-' || authority.find("--") != std::string::npos)
    return Status::InvalidArgument("container name must be 3 to 63 lower-case letters, digits and single hyphens, "
                                   "starting and ending with a letter or digit");
  if (slash != std::string::npos) out->prefix = TrimSlashes(path.substr(slash));
  return Status::OK();
}

// sftp://USER@HOST[:PORT]/PATH: the user is required (there is no default
// worth guessing), the port defaults to 22. bucket holds "HOST:PORT".
Status ParseSftpAuthority(const std::string& path, ReplicaUrl* out) {
  const size_t slash = path.find('/');
  std::string authority = path.substr(0, slash);
  const size_t at = authority.rfind('@');
  if (at == std::string::npos || at == 0)
    return Status::InvalidArgument("missing user: sftp://USER@HOST[:PORT]/path");
  out->account = authority.substr(0, at);
  if (out->account.find(':') != std::string::npos)
    return Status::InvalidArgument("a password in the URL is never used: authenticate with a key "
                                   "(?key=PATH or an agent at SSH_AUTH_SOCK) and remove ':password'");
  std::string host = authority.substr(at + 1), port = "22";
  if (size_t c = host.rfind(':'); c != std::string::npos && host.find(']', c) == std::string::npos) {
    port = host.substr(c + 1);
    host = host.substr(0, c);
  }
  if (host.empty()) return Status::InvalidArgument("missing host: sftp://USER@HOST[:PORT]/path");
  // A host name (letters, digits, '-', '.', '_') or an IPv6 literal in
  // brackets: anything else ('?', '%', '/' written percent-encoded) would
  // name another host, or none, once the URL is printed and read again.
  const bool ipv6 = host.size() > 2 && host.front() == '[' && host.back() == ']' &&
                    AllOf(host.substr(1, host.size() - 2), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'; });
  if (!ipv6 && !AllOf(host, [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_'; }))
    return Status::InvalidArgument("the host must be a host name or an IPv6 address in brackets: "
                                   "sftp://USER@HOST[:PORT]/path or sftp://USER@[::1]:PORT/path");
  if (port.empty() || port.size() > 5 || !AllOf(port, [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(port) == 0 || std::stoi(port) > 65535)
    return Status::InvalidArgument("the port must be a number from 1 to 65535: sftp://USER@HOST:PORT/path");
  out->bucket = host + ":" + port;
  if (slash != std::string::npos) out->prefix = TrimSlashes(path.substr(slash));
  if (out->prefix.empty()) return Status::InvalidArgument("missing path: sftp://USER@HOST[:PORT]/path");
  return Status::OK();
}

}  // namespace

Status ParseReplicaUrl(const std::string& url, ReplicaUrl* out) {
  *out = ReplicaUrl();
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("replica URL '" + RedactUrl(url) + "': " + why);
  };
  size_t colon = url.find("://");
  if (colon == std::string::npos || colon == 0)
    return bad("expected SCHEME://..., e.g. file:///var/backups/app or s3://bucket/prefix");
  std::string scheme = url.substr(0, colon);
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string rest = url.substr(colon + 3);
  std::string query;
  if (size_t q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (rest.find('#') != std::string::npos) return bad("fragments ('#') are not allowed");
  std::string path;
  if (!PercentDecode(rest, &path)) return bad("bad percent-encoding");
  for (char c : path)
    if (static_cast<unsigned char>(c) < 0x20) return bad("control characters are not allowed");

  if (scheme == "file") {
    if (path.empty() || path[0] != '/')
      return bad("file URLs need an absolute path: file:///abs/path (three slashes)");
    out->prefix = TrimSlashes(path);
    if (out->prefix.empty()) return bad("the root directory cannot be a replica");
  } else if (scheme == "s3" || scheme == "gs") {
    size_t slash = path.find('/');
    out->bucket = path.substr(0, slash);
    if (out->bucket.empty()) return bad("missing bucket: s3://BUCKET/prefix");
    if (out->bucket.size() < 3 || out->bucket.size() > 63)
      return bad("bucket name must be 3 to 63 characters");
    for (char c : out->bucket)
      if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
            c == '-' || c == '.' || c == '_'))
        return bad("bucket name may hold only lower-case letters, digits, '-', '.' and '_'");
    if (slash != std::string::npos) out->prefix = TrimSlashes(path.substr(slash));
  } else if (scheme == "abs") {
    Status s = ParseAbsAuthority(path, out);
    if (!s.ok()) return bad(s.message());
  } else if (scheme == "sftp") {
    Status s = ParseSftpAuthority(path, out);
    if (!s.ok()) return bad(s.message());
  } else {
    return bad("unknown scheme '" + scheme + "' (supported: file, s3, gs, abs, sftp)");
  }
  for (const auto& seg : std::set<std::string>{".", ".."}) {
    std::string p = "/" + out->prefix + "/";
    if (p.find("/" + seg + "/") != std::string::npos) return bad("'.' and '..' path segments are not allowed");
  }
  if (out->prefix.find("//") != std::string::npos) return bad("empty path segment ('//')");
  out->scheme = scheme;

  static const std::set<std::string> kKnown = {"endpoint",     "region",  "force-path-style",    "ca-file",
                                               "insecure-skip-verify", "profile", "multipart-threshold",
                                               "multipart-part-size", "checksum",
                                               // sftp:// only
                                               "key", "known-hosts", "insecure-skip-host-key", "sessions"};
  static const std::set<std::string> kSftpOnly = {"key", "known-hosts", "insecure-skip-host-key", "sessions"};
  size_t pos = 0;
  while (pos < query.size()) {
    size_t amp = query.find('&', pos);
    std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    pos = amp == std::string::npos ? query.size() : amp + 1;
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    std::string k, v;
    if (!PercentDecode(kv.substr(0, eq), &k) ||
        !PercentDecode(eq == std::string::npos ? "" : kv.substr(eq + 1), &v))
      return bad("bad percent-encoding in query");
    if (!kKnown.count(k))
      return bad("unknown parameter '" + k +
                 "' (known: endpoint, region, force-path-style, ca-file, insecure-skip-verify, profile, "
                 "multipart-threshold, multipart-part-size, checksum, and for sftp: key, known-hosts, "
                 "insecure-skip-host-key, sessions)");
    if (scheme == "file") return bad("file URLs take no parameters");
    if ((scheme == "sftp") != (kSftpOnly.count(k) > 0))
      return bad(scheme == "sftp" ? "'" + k + "' is not for sftp:// URLs, which take key, known-hosts, "
                                    "insecure-skip-host-key and sessions"
                                  : "'" + k + "' is for sftp:// URLs only");
    if (scheme == "abs" && (k == "region" || k == "force-path-style" || k == "profile"))
      return bad("'" + k + "' is for s3:// URLs; abs:// takes endpoint, ca-file, insecure-skip-verify, "
                 "multipart-threshold and multipart-part-size");
    if (k == "endpoint") {
      // http(s)://HOST[:PORT][/PATH], no credentials: an endpoint is where
      // requests go, never how they are signed (keys come from the
      // environment or the profile). Its value is not echoed: it may hold
      // the very user:password it must not.
      const std::string kEndpointForm = "the endpoint must be http://HOST[:PORT] or https://HOST[:PORT]";
      const size_t sep = v.find("://");
      const std::string ep_scheme = sep == std::string::npos ? "" : v.substr(0, sep);
      const std::string rest = sep == std::string::npos ? "" : v.substr(sep + 3);
      const std::string authority = rest.substr(0, rest.find_first_of("/?#"));
      if (authority.find('@') != std::string::npos)
        return Status::InvalidArgument(
            "replica URL: the endpoint holds user:password@ credentials, which are never sent that way: remove "
            "them and give the keys through the environment " +
            std::string(scheme == "abs" ? "(AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or "
                                          "AZURE_STORAGE_CONNECTION_STRING)"
                                        : "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or a profile"));
      bool ok = (ep_scheme == "http" || ep_scheme == "https") && !authority.empty() && authority[0] != ':';
      for (char c : v) ok &= static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
      if (!ok) return bad(kEndpointForm + " (e.g. endpoint=http://127.0.0.1:9000)");
    }
    out->params[k] = v;
  }
  return Status::OK();
}

// Percent-encodes what would change the meaning of a URL when it is
// parsed again: '%', '?', '#', control characters, and in the query also
// '&' and '='.
static std::string Escape(const std::string& in, bool query) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (c == '%' || c == '?' || c == '#' || c < 0x20 || c == 0x7f || (query && (c == '&' || c == '='))) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string ReplicaUrl::ToString() const {
  std::string s = scheme + "://";
  if (scheme == "file") {
    s += "/" + Escape(prefix, false);
  } else {
    if (!account.empty()) s += Escape(account, false) + "@";
    s += bucket;
    if (!prefix.empty()) s += "/" + Escape(prefix, false);
  }
  char sep = '?';
  for (const auto& [k, v] : params) {
    s += sep + Escape(k, true) + "=" + Escape(v, true);
    sep = '&';
  }
  return s;
}

ReplicaUrl ReplicaUrl::Child(const std::string& name) const {
  ReplicaUrl c = *this;
  c.prefix = prefix.empty() ? name : prefix + "/" + name;
  return c;
}

std::string ReplicaUrl::StoreIdentity() const {
  std::string id = scheme + "|" + account + "|" + bucket;
  for (const auto& [k, v] : params) id += "|" + k + "=" + v;
  return id;
}

}  // namespace replite
