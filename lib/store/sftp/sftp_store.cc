#include "store/sftp/sftp_store.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "store/attempt_scope.h"
#include "store/http_retry.h"
#include "store/sftp/sftp_sessions.h"

namespace replite {
namespace {

constexpr const char* kTempMark = ".tmp-";

// Percent-encodes a path for a curl URL ('/' kept).
std::string EscapePath(const std::string& in) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// A path for a quote command: libcurl takes a double-quoted argument with
// \" and \\ escapes.
std::string QuotePath(const std::string& p) {
  std::string out = "\"";
  for (char c : p) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string DirOf(const std::string& path) {
  size_t s = path.find_last_of('/');
  return s == std::string::npos ? "" : path.substr(0, s);
}

std::string RandomHex() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

bool FileExists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// What the host key callback saw on the last connect.
struct HostKeyCheck {
  bool insecure = false;
  int match = -1;  // curl_khmatch, -1 if the callback did not run
};

int OnHostKey(CURL*, const struct curl_khkey*, const struct curl_khkey*, enum curl_khmatch match, void* arg) {
  auto* check = static_cast<HostKeyCheck*>(arg);
  check->match = match;
  return match == CURLKHMATCH_OK ? CURLKHSTAT_FINE : CURLKHSTAT_REJECT;
}

size_t AppendBody(char* p, size_t size, size_t n, void* arg) {
  static_cast<std::string*>(arg)->append(p, size * n);
  return size * n;
}

struct StringReader {
  const std::string* data;
  size_t pos = 0;
};

size_t ReadString(char* p, size_t size, size_t n, void* arg) {
  auto* r = static_cast<StringReader*>(arg);
  size_t k = std::min(size * n, r->data->size() - r->pos);
  std::copy_n(r->data->data() + r->pos, k, p);
  r->pos += k;
  return k;
}

// One entry of a directory listing (OpenSSH long name).
struct Entry {
  std::string name;
  char type = '-';  // 'd', '-', 'l', ...
  uint64_t size = 0;
  int64_t mtime_ms = 0;
};

// "-rw-r--r--    1 user     group        216 Dec  2 21:39 name" (or
// "Dec  2  2025" for old files). mtime: to the minute, read as UTC.
bool ParseLongName(const std::string& line, Entry* e) {
  size_t pos = 0;
  std::string f[8];
  for (auto& field : f) {
    while (pos < line.size() && line[pos] == ' ') pos++;
    size_t end = line.find(' ', pos);
    if (end == std::string::npos) return false;
    field = line.substr(pos, end - pos);
    pos = end;
  }
  if (pos + 1 >= line.size() || f[0].empty()) return false;
  e->name = line.substr(pos + 1);
  e->type = f[0][0];
  char* end = nullptr;
  e->size = std::strtoull(f[4].c_str(), &end, 10);
  if (end == f[4].c_str()) return false;
  static const char* kMon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  struct tm tm = {};
  tm.tm_mon = -1;
  for (int i = 0; i < 12; i++)
    if (f[5] == kMon[i]) tm.tm_mon = i;
  tm.tm_mday = std::atoi(f[6].c_str());
  time_t now = std::time(nullptr);
  struct tm now_tm;
  gmtime_r(&now, &now_tm);
  if (f[7].find(':') != std::string::npos) {
    tm.tm_year = now_tm.tm_year;
    tm.tm_hour = std::atoi(f[7].c_str());
    tm.tm_min = std::atoi(f[7].c_str() + f[7].find(':') + 1);
    if (tm.tm_mon > now_tm.tm_mon + 1) tm.tm_year--;  // last year's date (ls shows times for ~6 months)
  } else {
    tm.tm_year = std::atoi(f[7].c_str()) - 1900;
  }
  e->mtime_ms = tm.tm_mon < 0 ? 0 : int64_t(timegm(&tm)) * 1000;
  return true;
}

class SftpStore final : public ObjectStore {
 public:
  SftpStore(const ReplicaUrl& url, std::string passphrase, const StoreConfig& config, int sessions)
      : user_(url.account),
        host_port_(url.bucket),
        passphrase_(std::move(passphrase)),
        config_(config),
        retry_(config),
        sessions_(sessions) {
    auto param = [&](const char* k) {
      auto it = url.params.find(k);
      return it == url.params.end() ? std::string() : it->second;
    };
    key_ = param("key");
    insecure_ = param("insecure-skip-host-key") == "true";
    known_hosts_ = param("known-hosts");
    if (known_hosts_.empty()) {
      const char* home = std::getenv("HOME");
      known_hosts_ = std::string(home && *home ? home : "") + "/.ssh/known_hosts";
    }
    const size_t colon = host_port_.rfind(':');
    host_ = host_port_.substr(0, colon);
    port_ = host_port_.substr(colon + 1);
    base_ = "sftp://" + EscapePath(user_) + "@" + host_port_;
    describe_ = "sftp://" + user_ + "@" + host_port_ + " (" +
                (key_.empty() ? std::string("agent at SSH_AUTH_SOCK") : "key " + key_) + ", " +
                (insecure_ ? std::string("host key NOT checked") : "known_hosts " + known_hosts_) + ")";
  }

  Status Put(const std::string& key, const std::string& data, const PutOptions& opts, std::string* etag) override {
    return PutWith(key, opts, etag, [&](CURL* h, StringReader* r, FILE**) {
      r->data = &data;
      curl_easy_setopt(h, CURLOPT_READFUNCTION, ReadString);
      curl_easy_setopt(h, CURLOPT_READDATA, r);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(data.size()));
      return Status::OK();
    });
  }

  Status PutFile(const std::string& key, const std::string& local_path, const PutOptions& opts) override {
    return PutWith(key, opts, nullptr, [&](CURL* h, StringReader*, FILE** f) {
      *f = std::fopen(local_path.c_str(), "rb");
      if (!*f) return Status::IOError("cannot open " + local_path + " to upload it: " + std::strerror(errno));
      struct stat st;
      if (::fstat(fileno(*f), &st) != 0) return Status::IOError("cannot stat " + local_path);
      curl_easy_setopt(h, CURLOPT_READDATA, *f);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(st.st_size));
      return Status::OK();
    });
  }

  Status Get(const std::string& key, std::string* out, uint64_t offset, uint64_t length) override {
    out->clear();
    if (length == 0) {
      ObjectInfo info;
      return Head(key, &info);
    }
    // An overwrite is remove + rename: a key missing for a moment may be
    // one being replaced (its temporary is there meanwhile), so look again
    // while a write of it is in flight before saying kNotFound. And
    // libcurl opens the file, then stats it by name for its size: a reader
    // racing an overwrite could take the new size to read the old file.
    // The mtime (by name) before the open and after the read must agree
    // (every overwrite moves it forward), or the read is done again.
    int missing = 0;
    for (int round = 0;; round++) {
      int64_t before_s = -1;
      Status s = Run("get", key, [&](CURL* h) {
        out->clear();
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, AppendBody);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
        curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
        std::string range;
        if (offset > 0 || length != UINT64_MAX) {
          range = std::to_string(offset) + "-";
          if (length != UINT64_MAX) range += std::to_string(offset + length - 1);
          curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
        }
        CURLcode rc = Perform(h, "/" + key);
        // An offset past the end: nothing there (Run drops the session,
        // Classify says OK). libcurl took the mtime before it looked.
        if (rc == CURLE_BAD_DOWNLOAD_RESUME) out->clear();
        curl_off_t t = -1;
        if (rc == CURLE_OK || rc == CURLE_BAD_DOWNLOAD_RESUME) curl_easy_getinfo(h, CURLINFO_FILETIME_T, &t);
        before_s = t;
        return rc;
      });
      int64_t after_s = -1;
      if (s.ok()) s = MtimeOf(key, &after_s);
      if (s.code() == Code::kNotFound && missing < 8 && (missing == 0 || WriteInFlight(key))) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5 << std::min(missing++, 4)));
        continue;
      }
      if (!s.ok()) return s;
      if (after_s == before_s) return Status::OK();
      if (round >= 20)
        return Status::Unavailable("object " + key + " on sftp://" + user_ + "@" + host_port_ +
                                   " kept changing while it was read (20 times): try again");
    }
  }

  Status Head(const std::string& key, ObjectInfo* out) override {
    const std::string dir = DirOf(key);
    const std::string name = key.substr(dir.empty() ? 0 : dir.size() + 1);
    std::vector<Entry> entries;
    Status s = ListDir(dir, &entries);
    if (s.code() == Code::kNotFound) return NotFound(key);
    if (!s.ok()) return s;
    auto it = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.name == name; });
    if (it == entries.end() || it->type == 'd') return NotFound(key);
    int64_t mtime_s = 0;
    s = MtimeOf(key, &mtime_s);
    if (!s.ok()) return s;
    out->key = key;
    out->size = it->size;
    out->mtime_ms = mtime_s * 1000;
    out->etag = std::to_string(mtime_s) + "-" + std::to_string(it->size);
    return Status::OK();
  }

  Status List(const std::string& prefix, std::vector<ObjectInfo>* out) override {
    out->clear();
    const size_t slash = prefix.find_last_of('/');
    Status s = Walk(slash == std::string::npos ? "" : prefix.substr(0, slash), prefix, false, out);
    std::sort(out->begin(), out->end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return s;
  }

  Status Delete(const std::vector<std::string>& keys) override {
    for (const auto& key : keys) {
      std::vector<std::string> cmds = {"rm " + QuotePath("/" + key)};
      // Emptied parent directories go too ('*': a directory that is not
      // empty stays, which is no error), up to the top-level one.
      for (std::string d = DirOf(key); d.find('/') != std::string::npos; d = DirOf(d))
        cmds.push_back("*rmdir " + QuotePath("/" + d));
      Status s = Quote("delete", key, cmds);
      if (s.code() == Code::kNotFound) continue;
      if (!s.ok()) return s;
    }
    return Status::OK();
  }

  Status RemoveAbandoned(const std::string& prefix, int64_t older_than_ms, uint64_t* removed) override {
    if (removed) *removed = 0;
    std::vector<ObjectInfo> temps;
    const size_t slash = prefix.find_last_of('/');
    Status s = Walk(slash == std::string::npos ? "" : prefix.substr(0, slash), prefix, true, &temps);
    if (!s.ok()) return s;
    for (const auto& t : temps) {
      int64_t mtime_s = 0;  // exact, not the listing's minute
      s = MtimeOf(t.key, &mtime_s);
      if (s.code() == Code::kNotFound) continue;
      if (!s.ok()) return s;
      if (mtime_s * 1000 >= older_than_ms) continue;  // maybe a write in progress
      s = Quote("remove abandoned", t.key, {"rm " + QuotePath("/" + t.key)});
      if (!s.ok() && s.code() != Code::kNotFound) return s;
      if (s.ok() && removed) (*removed)++;
    }
    return Status::OK();
  }

  std::string Describe() const override { return describe_; }

 private:
  using Setup = std::function<Status(CURL*, StringReader*, FILE**)>;

  Status NotFound(const std::string& key) const {
    return Status::NotFound("object " + key + " not found on sftp://" + user_ + "@" + host_port_);
  }

  // Whether the directory of `key` holds a temporary of a write of it, or
  // the key itself again (a write that finished meanwhile).
  bool WriteInFlight(const std::string& key) {
    const std::string dir = DirOf(key);
    const std::string name = key.substr(dir.empty() ? 0 : dir.size() + 1);
    const std::string temp = name + kTempMark;
    std::vector<Entry> entries;
    if (!ListDir(dir, &entries).ok()) return false;
    return std::any_of(entries.begin(), entries.end(), [&](const Entry& e) {
      return e.name == name || e.name.compare(0, temp.size(), temp) == 0;
    });
  }

  // Sets the options every request has, and the URL of `path` (absolute).
  CURLcode Perform(CURL* h, const std::string& path) {
    const std::string url = base_ + EscapePath(path);
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "sftp");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.connect_timeout_ms));
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(config_.low_speed_time_s));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err_buf());
    err_buf()[0] = '\0';
    if (!key_.empty()) {
      curl_easy_setopt(h, CURLOPT_SSH_AUTH_TYPES, static_cast<long>(CURLSSH_AUTH_PUBLICKEY));
      curl_easy_setopt(h, CURLOPT_SSH_PRIVATE_KEYFILE, key_.c_str());
      const std::string pub = key_ + ".pub";
      curl_easy_setopt(h, CURLOPT_SSH_PUBLIC_KEYFILE, FileExists(pub) ? pub.c_str() : "");
      if (!passphrase_.empty()) curl_easy_setopt(h, CURLOPT_KEYPASSWD, passphrase_.c_str());
    } else {
      curl_easy_setopt(h, CURLOPT_SSH_AUTH_TYPES, static_cast<long>(CURLSSH_AUTH_AGENT));
    }
    host_check() = HostKeyCheck();
    if (!insecure_) {
      curl_easy_setopt(h, CURLOPT_SSH_KNOWNHOSTS, known_hosts_.c_str());
      curl_easy_setopt(h, CURLOPT_SSH_KEYFUNCTION, OnHostKey);
      curl_easy_setopt(h, CURLOPT_SSH_KEYDATA, &host_check());
    }
    return curl_easy_perform(h);
  }

  static char* err_buf() {
    thread_local char buf[CURL_ERROR_SIZE];
    return buf;
  }
  static HostKeyCheck& host_check() {
    thread_local HostKeyCheck c;
    return c;
  }

  // Maps a libcurl result to a Status naming the thing and the fix.
  Status Classify(CURLcode rc, const std::string& op, const std::string& key) const {
    const std::string what = "sftp " + op + " " + key + " on " + user_ + "@" + host_port_;
    const std::string detail = err_buf()[0] ? std::string(err_buf()) : curl_easy_strerror(rc);
    const bool missing = detail.find("No such file") != std::string::npos;
    switch (rc) {
      case CURLE_OK:
        return Status::OK();
      case CURLE_BAD_DOWNLOAD_RESUME:  // only a ranged Get: the range starts past the end, nothing there
        return Status::OK();
      case CURLE_REMOTE_FILE_NOT_FOUND:
        return NotFound(key);
      case CURLE_QUOTE_ERROR:
        if (missing) return NotFound(key);
        if (detail.find("ermission denied") != std::string::npos)
          return Status::PermissionDenied(what + ": " + detail + " (check the user's rights on the path)");
        return Status::IOError(what + ": " + detail);
      case CURLE_LOGIN_DENIED:
        return Status::Unauthenticated(
            what + ": the server refused user '" + user_ + "' with " +
            (key_.empty() ? std::string("the keys of the agent at SSH_AUTH_SOCK")
                          : "key " + key_ + " (wrong passphrase in REPLITE_SFTP_KEY_PASSPHRASE, or not authorized)") +
            ": add the public key to that user's ~/.ssh/authorized_keys on the server, or pass ?key=PATH to a key "
            "it accepts");
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSH:
        if (host_check().match == CURLKHMATCH_MISMATCH)
          return Status::Unauthenticated(
              what + ": the server's host key does not match the one for [" + host_ + "]:" + port_ + " in " +
              known_hosts_ + " (the key changed, or this is not the server you meant): if the change is expected, "
              "remove the old line (ssh-keygen -R '[" + host_ + "]:" + port_ + "' -f " + known_hosts_ +
              ") and add the new key");
        if (host_check().match == CURLKHMATCH_MISSING || rc == CURLE_PEER_FAILED_VERIFICATION)
          return Status::Unauthenticated(
              what + ": the server's host key is not in " + known_hosts_ + ": add it after checking its fingerprint "
              "(ssh-keyscan -p " + port_ + " " + host_ + " >> " + known_hosts_ + "), point ?known-hosts=PATH at a file "
              "that has it, or (tests only) pass ?insecure-skip-host-key=true");
        if (missing) return NotFound(key);
        return Status::Unavailable(what + ": " + detail);
      case CURLE_REMOTE_ACCESS_DENIED:
        return Status::PermissionDenied(what + ": " + detail + " (check the user's rights on the path)");
      case CURLE_REMOTE_DISK_FULL:
        return Status::ResourceExhausted(what + ": the server's disk is full");
      case CURLE_READ_ERROR:
        return Status::IOError(what + ": reading the local file failed: " + detail);
      case CURLE_FILE_COULDNT_READ_FILE:
        if (detail.find("private key") != std::string::npos || detail.find("ublic key") != std::string::npos)
          return Status::Unauthenticated(what + ": " + detail + " (check ?key=PATH)");
        return Status::IOError(what + ": " + detail);
      default:
        return Status::Unavailable(what + ": " + detail);
    }
  }

  // One operation with retries: body runs on a leased session and returns
  // libcurl's result; retryable outcomes are tried again after a backoff.
  Status Run(const std::string& op, const std::string& key, const std::function<CURLcode(CURL*)>& body) {
    Status s;
    const int attempts = retry_.MaxAttempts();
    for (int i = 0; i < attempts; i++) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(retry_.BackoffMs(i - 1)));
      auto lease = sessions_.Acquire();
      if (!lease.get()) return Status::ResourceExhausted("libcurl cannot allocate an SFTP session");
      const CURLcode rc = body(lease.get());
      // libcurl (7.88 at least) answers a range that starts past the end
      // of a file after opening it and leaves that SFTP handle open: the
      // connection's next download overwrites it, so the client leaks it
      // (LeakSanitizer: 392 bytes from libssh2_sftp_open_ex) and the server
      // holds the file open until the connection ends. Closing the
      // connection now closes the handle (libcurl's SFTP shutdown does).
      if (rc == CURLE_BAD_DOWNLOAD_RESUME) lease.Discard();
      s = Classify(rc, op, key);
      if (s.ok() || !s.retryable()) return s;
    }
    return s;
  }

  // Quote commands (rm, rename, ...) run in order on one session; the
  // first failing one ends the list.
  Status Quote(const std::string& op, const std::string& key, const std::vector<std::string>& cmds) {
    return Run(op, key, [&](CURL* h) {
      struct curl_slist* list = nullptr;
      for (const auto& c : cmds) list = curl_slist_append(list, c.c_str());
      curl_easy_setopt(h, CURLOPT_QUOTE, list);
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
      CURLcode rc = Perform(h, "/");
      curl_easy_setopt(h, CURLOPT_QUOTE, nullptr);
      curl_slist_free_all(list);
      return rc;
    });
  }

  Status MtimeOf(const std::string& key, int64_t* mtime_s) {
    return Run("stat", key, [&](CURL* h) {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
      curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
      CURLcode rc = Perform(h, "/" + key);
      curl_off_t t = -1;
      if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_FILETIME_T, &t);
      if (rc == CURLE_OK && t < 0) return CURLE_REMOTE_FILE_NOT_FOUND;
      *mtime_s = t;
      return rc;
    });
  }

  // The entries of directory `dir` ("" = "/"), "." and ".." left out.
  Status ListDir(const std::string& dir, std::vector<Entry>* out) {
    std::string body;
    Status s = Run("list", dir + "/", [&](CURL* h) {
      body.clear();
      curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, AppendBody);
      curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
      return Perform(h, dir.empty() ? "/" : "/" + dir + "/");
    });
    if (!s.ok()) return s;
    out->clear();
    size_t pos = 0;
    while (pos < body.size()) {
      size_t nl = body.find('\n', pos);
      if (nl == std::string::npos) nl = body.size();
      Entry e;
      if (ParseLongName(body.substr(pos, nl - pos), &e) && e.name != "." && e.name != "..") {
        if (e.type == 'l') e.name = e.name.substr(0, e.name.find(" -> "));
        out->push_back(std::move(e));
      }
      pos = nl + 1;
    }
    return Status::OK();
  }

  // Objects under `prefix` below directory `dir`; with `temporaries`, the
  // unfinished writes' temporary files instead.
  Status Walk(const std::string& dir, const std::string& prefix, bool temporaries, std::vector<ObjectInfo>* out) {
    std::vector<Entry> entries;
    Status s = ListDir(dir, &entries);
    if (s.code() == Code::kNotFound) return Status::OK();
    if (!s.ok()) return s;
    for (const auto& e : entries) {
      const std::string key = dir.empty() ? e.name : dir + "/" + e.name;
      if (e.type == 'd') {
        const std::string sub = key + "/";
        const size_t n = std::min(sub.size(), prefix.size());
        if (sub.compare(0, n, prefix, 0, n) == 0) {
          s = Walk(key, prefix, temporaries, out);
          if (!s.ok()) return s;
        }
      } else if (e.type == '-' && key.compare(0, prefix.size(), prefix) == 0 &&
                 (e.name.find(kTempMark) != std::string::npos) == temporaries) {
        ObjectInfo info;
        info.key = key;
        info.size = e.size;
        info.mtime_ms = e.mtime_ms;
        out->push_back(std::move(info));
      }
    }
    return Status::OK();
  }

  Status PutWith(const std::string& key, const PutOptions& opts, std::string* etag, const Setup& setup) {
    if (!opts.if_match.empty()) {
      ObjectInfo cur;
      Status s = Head(key, &cur);
      if (s.code() == Code::kNotFound || (s.ok() && cur.etag != opts.if_match))
        return Status::FailedPrecondition("object " + key + " on sftp://" + user_ + "@" + host_port_ +
                                          " changed (If-Match)");
      if (!s.ok()) return s;
    }
    const std::string tmp = key + kTempMark + RandomHex();
    Status s = Run("put", key, [&](CURL* h) {
      StringReader reader{nullptr};
      FILE* f = nullptr;
      Status st = setup(h, &reader, &f);
      if (!st.ok()) {
        if (f) std::fclose(f);
        return CURLE_READ_ERROR;
      }
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_FTP_CREATE_MISSING_DIRS, static_cast<long>(CURLFTP_CREATE_DIR));
      curl_easy_setopt(h, CURLOPT_NEW_FILE_PERMS, 0600L);
      curl_easy_setopt(h, CURLOPT_NEW_DIRECTORY_PERMS, 0700L);
      CURLcode rc = Perform(h, "/" + tmp);
      if (f) std::fclose(f);
      return rc;
    });
    if (!s.ok()) {
      (void)Quote("remove temporary", tmp, {"*rm " + QuotePath("/" + tmp)});
      return s;
    }
    // A rename onto a missing key: atomic, and refused if the key exists.
    s = Quote("rename", key, {"rename " + QuotePath("/" + tmp) + " " + QuotePath("/" + key)});
    if (!s.ok()) {
      ObjectInfo cur;
      Status h = Head(key, &cur);
      if (h.ok() && opts.if_none_match) {
        s = Status::FailedPrecondition("object " + key + " on sftp://" + user_ + "@" + host_port_ +
                                       " already exists (If-None-Match)");
      } else if (h.ok()) {
        // Overwrite: the new version gets an mtime past the old one's (a
        // new ETag even within one second), then remove + rename.
        const int64_t now_s = std::time(nullptr);
        const time_t t = static_cast<time_t>(std::max<int64_t>(now_s, cur.mtime_ms / 1000 + 1));
        struct tm tm;
        gmtime_r(&t, &tm);
        char date[64];
        std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s = Quote("overwrite", key,
                  {"mtime \"" + std::string(date) + "\" " + QuotePath("/" + tmp), "rm " + QuotePath("/" + key),
                   "rename " + QuotePath("/" + tmp) + " " + QuotePath("/" + key)});
      } else if (!h.ok() && h.code() != Code::kNotFound) {
        s = h;
      }
      if (!s.ok()) {
        (void)Quote("remove temporary", tmp, {"*rm " + QuotePath("/" + tmp)});
        return s;
      }
    }
    if (etag) {
      ObjectInfo info;
      s = Head(key, &info);
      if (s.ok()) *etag = info.etag;
    }
    return s;
  }

  const std::string user_, host_port_, passphrase_;
  std::string host_, port_, key_, known_hosts_, base_, describe_;
  bool insecure_ = false;
  const StoreConfig config_;
  HttpRetry retry_;
  sftp::Sessions sessions_;
};

}  // namespace

Status OpenSftpStoreWithPassphrase(const ReplicaUrl& url, const std::string& passphrase, const StoreConfig& config,
                                   std::shared_ptr<ObjectStore>* out) {
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (url.scheme != "sftp") return Status::InvalidArgument("not an sftp:// URL: " + url.ToString());
  int sessions = 4;
  if (auto it = url.params.find("sessions"); it != url.params.end()) {
    char* end = nullptr;
    long n = std::strtol(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end || n < 1 || n > 64)
      return Status::InvalidArgument("sessions=" + it->second + " in " + url.ToString() +
                                     ": give a number of SSH sessions from 1 to 64");
    sessions = static_cast<int>(n);
  }
  if (auto it = url.params.find("insecure-skip-host-key");
      it != url.params.end() && it->second != "true" && it->second != "false")
    return Status::InvalidArgument("insecure-skip-host-key must be true or false in " + url.ToString());
  if (auto it = url.params.find("key"); it != url.params.end() && !FileExists(it->second))
    return Status::InvalidArgument("key=" + it->second + " in " + url.ToString() +
                                   ": no such file (give the path of an SSH private key)");
  if (url.params.find("key") == url.params.end()) {
    const char* sock = std::getenv("SSH_AUTH_SOCK");
    if (!sock || !*sock)
      return Status::InvalidArgument("sftp URL " + url.ToString() +
                                     " has no key: pass ?key=PATH to an SSH private key, or run an ssh-agent "
                                     "(SSH_AUTH_SOCK) holding one");
  }
  *out = std::make_shared<SftpStore>(url, passphrase, config, sessions);
  return Status::OK();
}

Status OpenSftpStore(const ReplicaUrl& url, Env*, const StoreConfig& config, std::shared_ptr<ObjectStore>* out) {
  const char* p = std::getenv("REPLITE_SFTP_KEY_PASSPHRASE");
  return OpenSftpStoreWithPassphrase(url, p ? p : "", config, out);
}

}  // namespace replite
