// libFuzzer harness for replica URLs (lib/store/replica_url.h) and the
// object layout (lib/format/layout.h: ParseObjectKey; lib/replica/manifest.h: DecodeManifest).
//
// The input is tried as a replica URL, as a manifest text and as an object
// key. Invariants:
//  - a URL that parses has scheme file/s3/gs/abs/sftp; file URLs have no
//    bucket, account or parameters; s3/gs buckets are 3..63 of [a-z0-9._-];
//    abs accounts and containers follow Azure naming rules; sftp URLs name
//    a user (no password), HOST:PORT and a path; the prefix has
//    no leading/trailing '/', no '//', no '.' or '..' segment; parameters are
//    known ones;
//  - it round-trips: ParseReplicaUrl(u.ToString()) succeeds with the same
//    fields, and ToString() is then a fixed point; Child("x") appends a
//    segment and keeps the store identity;
//  - a manifest that decodes re-encodes (EncodeManifest) and decodes to the
//    same manifest; its generation ids are 16 lower-case hex digits;
//  - an object key that parses is exactly the key SnapshotKey/SegmentKey/
//    CompactedKey builds from the parsed fields (level 0..9) (under the prefixes "" and "db/x").
#include <cstdint>
#include <set>
#include <string>

#include "format/layout.h"
#include "fuzz_check.h"
#include "replica/manifest.h"
#include "store/replica_url.h"

using namespace replite;

namespace {

bool SameUrl(const ReplicaUrl& a, const ReplicaUrl& b) {
  return a.scheme == b.scheme && a.account == b.account && a.bucket == b.bucket && a.prefix == b.prefix && a.params == b.params;
}

bool IsHex16(const std::string& s) {
  if (s.size() != 16) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

void CheckUrl(const std::string& text) {
  ReplicaUrl u;
  Status s = ParseReplicaUrl(text, &u);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == Code::kInvalidArgument, "URL error is not kInvalidArgument");
    return;
  }
  FUZZ_CHECK(u.scheme == "file" || u.scheme == "s3" || u.scheme == "gs" || u.scheme == "abs" || u.scheme == "sftp",
             "unknown scheme accepted");
  auto lower_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (u.scheme == "file") {
    FUZZ_CHECK(u.bucket.empty() && u.account.empty() && u.params.empty(),
               "file URL with a bucket, an account or parameters");
    FUZZ_CHECK(!u.prefix.empty(), "file URL naming the root directory");
  } else if (u.scheme == "s3" || u.scheme == "gs") {
    FUZZ_CHECK(u.account.empty(), "s3/gs URL with an account");
    FUZZ_CHECK(u.bucket.size() >= 3 && u.bucket.size() <= 63, "bucket length out of range");
    for (char c : u.bucket)
      FUZZ_CHECK(lower_digit(c) || c == '-' || c == '.' || c == '_', "bucket holds a forbidden character");
  } else if (u.scheme == "abs") {
    if (!u.account.empty()) {
      FUZZ_CHECK(u.account.size() >= 3 && u.account.size() <= 24, "storage account length out of range");
      for (char c : u.account) FUZZ_CHECK(lower_digit(c), "storage account holds a forbidden character");
    }
    FUZZ_CHECK(u.bucket.size() >= 3 && u.bucket.size() <= 63, "container length out of range");
    for (char c : u.bucket) FUZZ_CHECK(lower_digit(c) || c == '-', "container holds a forbidden character");
    FUZZ_CHECK(u.bucket.front() != '-' && u.bucket.back() != '-' && u.bucket.find("--") == std::string::npos,
               "container with a leading, trailing or double hyphen");
  } else {  // sftp
    FUZZ_CHECK(!u.account.empty() && u.account.find(':') == std::string::npos,
               "sftp URL without a user or with a password");
    const size_t colon = u.bucket.rfind(':');
    FUZZ_CHECK(colon != std::string::npos && colon > 0, "sftp bucket is not HOST:PORT");
    const std::string port = u.bucket.substr(colon + 1);
    FUZZ_CHECK(!port.empty() && port.size() <= 5, "sftp port is not a number");
    for (char d : port) FUZZ_CHECK(d >= '0' && d <= '9', "sftp port is not a number");
    FUZZ_CHECK(std::stoi(port) >= 1 && std::stoi(port) <= 65535, "sftp port out of range");
    FUZZ_CHECK(!u.prefix.empty(), "sftp URL without a path");
  }
  static const std::set<std::string> kKnown = {"endpoint", "region", "force-path-style", "ca-file",
                                               "insecure-skip-verify", "profile", "multipart-threshold",
                                               "multipart-part-size", "checksum"};
  static const std::set<std::string> kSftp = {"key", "known-hosts", "insecure-skip-host-key", "sessions"};
  for (const auto& [k, v] : u.params)
    FUZZ_CHECK(u.scheme == "sftp" ? kSftp.count(k) == 1 : kKnown.count(k) == 1,
               "unknown parameter or one of another scheme accepted");

  // Round trip through ToString().
#ifndef REPLITE_FUZZ_STRICT
  // KNOWN BUG (reported with issue 6): ReplicaUrl::ToString() does not
  // percent-encode, so a prefix holding '?', '#' or '%' (written %3F, %23,
  // %25) or a parameter holding '&' or '%' (or '=' in its name) comes back
  // as a different URL or none. Skipped until fixed; build with
  // -DREPLITE_FUZZ_STRICT=ON to check these too.
  if (u.prefix.find_first_of("?#%") != std::string::npos) return;
  for (const auto& [k, v] : u.params)
    if (k.find_first_of("&=%") != std::string::npos || v.find_first_of("&%") != std::string::npos) return;
#endif
  const std::string str = u.ToString();
  ReplicaUrl u2;
  Status s2 = ParseReplicaUrl(str, &u2);
  if (!s2.ok() || !SameUrl(u, u2))
    std::fprintf(stderr, "URL round trip: '%s' -> '%s' -> %s\n", text.c_str(), str.c_str(), s2.ToString().c_str());
  FUZZ_CHECK(s2.ok(), "ToString() of a parsed URL does not parse");
  FUZZ_CHECK(SameUrl(u, u2), "ToString() of a parsed URL parses to different fields");
  FUZZ_CHECK(u2.ToString() == str, "ToString() is not a fixed point");
  FUZZ_CHECK(u.StoreIdentity() == u2.StoreIdentity(), "store identity changed by the round trip");

  ReplicaUrl c = u.Child("x");
  FUZZ_CHECK(c.StoreIdentity() == u.StoreIdentity(), "Child() changed the store identity");
  FUZZ_CHECK(c.prefix == (u.prefix.empty() ? "x" : u.prefix + "/x"), "Child() prefix");
}

void CheckManifest(const std::string& text) {
  Manifest m;
  Status s = DecodeManifest(text, &m);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == Code::kCorruption, "manifest error is not kCorruption");
    return;
  }
  for (const auto& g : m.generations) FUZZ_CHECK(IsHex16(g.id), "manifest generation id is not 16 hex digits");
  const std::string enc = EncodeManifest(m);
  Manifest m2;
  FUZZ_CHECK(DecodeManifest(enc, &m2).ok(), "an encoded manifest does not decode");
  FUZZ_CHECK(m2.page_size == m.page_size && m2.generations.size() == m.generations.size(),
             "manifest does not round-trip");
  for (size_t i = 0; i < m.generations.size(); i++)
    FUZZ_CHECK(m2.generations[i].id == m.generations[i].id &&
                   m2.generations[i].first_txid == m.generations[i].first_txid &&
                   m2.generations[i].created_ms == m.generations[i].created_ms,
               "manifest generation does not round-trip");
  FUZZ_CHECK(EncodeManifest(m2) == enc, "EncodeManifest is not a fixed point");
}

void CheckObjectKey(const std::string& prefix, const std::string& key) {
  ObjectInfo info;
  info.key = key;
  info.size = 7;
  ObjectRef r;
  if (!ParseObjectKey(prefix, info, &r)) return;
  FUZZ_CHECK(IsHex16(r.generation), "parsed generation is not 16 hex digits");
  FUZZ_CHECK(r.key == key && r.size == 7, "parsed key/size not carried over");
  FUZZ_CHECK(r.first_txid <= r.last_txid, "parsed txid range reversed");
  FUZZ_CHECK(r.level >= 0 && r.level <= kMaxLevel, "parsed level out of range");
  FUZZ_CHECK(r.kind == ObjectRef::kSegment || r.level == 0, "a snapshot with a level");
  const std::string rebuilt = r.kind == ObjectRef::kSnapshot ? SnapshotKey(prefix, r.generation, r.first_txid)
                              : r.level == 0 ? SegmentKey(prefix, r.generation, r.first_txid, r.last_txid)
                                             : CompactedKey(prefix, r.generation, r.level, r.first_txid, r.last_txid);
  if (rebuilt != key) std::fprintf(stderr, "object key '%s' rebuilt as '%s'\n", key.c_str(), rebuilt.c_str());
  FUZZ_CHECK(rebuilt == key, "a parsed object key does not rebuild to itself");
  if (r.kind == ObjectRef::kSnapshot) FUZZ_CHECK(r.first_txid == r.last_txid, "snapshot with a txid range");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  CheckUrl(text);
  CheckManifest(text);
  CheckObjectKey("", text);
  CheckObjectKey("db/x", text);
  // Keys built from a parsed URL's prefix, as the replicator does.
  ReplicaUrl u;
  if (ParseReplicaUrl(text, &u).ok()) {
    const std::string key = SegmentKey(u.prefix, "0123456789abcdef", 1, 2);
    ObjectInfo info;
    info.key = key;
    ObjectRef r;
    FUZZ_CHECK(ParseObjectKey(u.prefix, info, &r) && r.first_txid == 1 && r.last_txid == 2,
               "a segment key built under a URL's prefix does not parse");
  }
  return 0;
}
