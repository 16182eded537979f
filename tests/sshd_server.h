// SshdServer: a real SFTP server for tests. Runs Debian's OpenSSH sshd
// (package openssh-server, installed by scripts/install-deps.sh; or
// REPLITE_SSHD) as the test's own user on 127.0.0.1 and a free port, with
// its own sshd_config, a temporary ed25519 host key and user keys made
// with ssh-keygen, and internal-sftp; killed when destroyed.
//
// Thread-safety: Shared() is safe to call from any thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

namespace replite::testing {

class SshdServer {
 public:
  // Starts a new server; nullptr (and *why, naming the fix) on failure.
  static std::unique_ptr<SshdServer> Start(std::string* why);
  // The process-wide server (started on first call, stopped at exit).
  static SshdServer* Shared(std::string* why);
  ~SshdServer();

  int port() const { return port_; }
  const std::string& user() const { return user_; }
  // A fresh-ish directory the user may write, for replicas ("/tmp/...").
  const std::string& data_dir() const { return data_dir_; }
  const std::string& log_path() const { return log_path_; }  // sshd's own log (LogLevel VERBOSE)
  const std::string& key_path() const { return key_path_; }          // authorized user key
  const std::string& other_key_path() const { return other_key_path_; }  // a key the server does not accept
  const std::string& known_hosts() const { return known_hosts_; }    // holds this server's host key
  const std::string& wrong_known_hosts() const { return wrong_known_hosts_; }  // another key for it
  const std::string& empty_known_hosts() const { return empty_known_hosts_; }  // does not name it
  // sftp://USER@127.0.0.1:PORT/<data_dir>/<sub>?key=...&known-hosts=...
  std::string Url(const std::string& sub, const std::string& extra_query = "") const;

 private:
  SshdServer() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string user_, dir_, data_dir_, log_path_, key_path_, other_key_path_, known_hosts_, wrong_known_hosts_,
      empty_known_hosts_;
};

}  // namespace replite::testing
