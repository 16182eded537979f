#include "sshd_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "server_process.h"

namespace replite::testing {
namespace {

bool Listening(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ssh-keygen -t ed25519 with no passphrase; false (and *why) on failure.
bool KeyGen(const std::string& path, const std::string& log, std::string* why) {
  const std::string cmd = "ssh-keygen -q -t ed25519 -N '' -C replite-test -f '" + path + "' >>'" + log + "' 2>&1";
  if (std::system(cmd.c_str()) == 0) return true;
  *why = "ssh-keygen failed (apt-get install openssh-client, or run scripts/install-deps.sh): " + Tail(log);
  return false;
}

// "ssh-ed25519 AAAA..." of a .pub file.
std::string PublicKey(const std::string& pub) {
  std::string s = ReadFile(pub);
  size_t sp = s.find(' ');
  return s.substr(0, s.find(' ', sp + 1));
}

}  // namespace

std::unique_ptr<SshdServer> SshdServer::Start(std::string* why) {
  const char* env = std::getenv("REPLITE_SSHD");
  const std::string sshd = env && *env ? env : "/usr/sbin/sshd";  // sshd insists on an absolute path
  if (::access(sshd.c_str(), X_OK) != 0) {
    *why = sshd + " is not installed (run scripts/install-deps.sh, which installs openssh-server, or set "
           "REPLITE_SSHD)";
    return nullptr;
  }
  std::unique_ptr<SshdServer> s(new SshdServer());
  struct passwd* pw = ::getpwuid(::getuid());
  if (!pw) {
    *why = "the test's user has no passwd entry, which sshd needs";
    return nullptr;
  }
  s->user_ = pw->pw_name;
  char tmpl[] = "/tmp/replite-sshd-XXXXXX";
  if (!mkdtemp(tmpl)) {
    *why = "mkdtemp /tmp/replite-sshd-XXXXXX failed";
    return nullptr;
  }
  s->dir_ = tmpl;
  s->log_path_ = s->dir_ + "/sshd.log";
  s->data_dir_ = s->dir_ + "/data";
  ::mkdir(s->data_dir_.c_str(), 0700);
  const std::string host_key = s->dir_ + "/host_key", other_host = s->dir_ + "/other_host_key";
  s->key_path_ = s->dir_ + "/user_key";
  s->other_key_path_ = s->dir_ + "/other_user_key";
  for (const auto& k : {host_key, other_host, s->key_path_, s->other_key_path_})
    if (!KeyGen(k, s->log_path_, why)) return nullptr;
  { std::ofstream(s->dir_ + "/authorized_keys") << ReadFile(s->key_path_ + ".pub"); }
  s->port_ = FreePort();
  if (s->port_ == 0) {
    *why = "no free TCP port on 127.0.0.1";
    return nullptr;
  }
  const std::string host = "[127.0.0.1]:" + std::to_string(s->port_);
  s->known_hosts_ = s->dir_ + "/known_hosts";
  s->wrong_known_hosts_ = s->dir_ + "/wrong_known_hosts";
  s->empty_known_hosts_ = s->dir_ + "/empty_known_hosts";
  { std::ofstream(s->known_hosts_) << host << " " << PublicKey(host_key + ".pub") << "\n"; }
  { std::ofstream(s->wrong_known_hosts_) << host << " " << PublicKey(other_host + ".pub") << "\n"; }
  { std::ofstream(s->empty_known_hosts_) << "[127.0.0.1]:1 " << PublicKey(host_key + ".pub") << "\n"; }
  const std::string config = s->dir_ + "/sshd_config";
  {
    std::ofstream c(config);
    c << "Port " << s->port_ << "\nListenAddress 127.0.0.1\nHostKey " << host_key
      << "\nAuthorizedKeysFile " << s->dir_ << "/authorized_keys\nPidFile none\nUsePAM no\nStrictModes no\n"
      << "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
      << "PermitRootLogin prohibit-password\nAllowUsers " << s->user_ << "\nSubsystem sftp internal-sftp\n"
      << "LogLevel VERBOSE\nMaxSessions 64\nMaxStartups 64\n";
  }
  // As root, sshd wants its privilege separation directory; a non-root
  // sshd (CI) runs without one, serving only its own user.
  if (::getuid() == 0) ::mkdir("/run/sshd", 0755);
  s->pid_ = SpawnLogged({sshd, "-D", "-e", "-f", config}, s->log_path_, why, s->dir_);
  if (s->pid_ < 0) return nullptr;
  const int port = s->port_;
  if (WaitUntilUp(s->pid_, [port] { return Listening(port); }, "sshd (" + sshd + ")",
                  "is openssh-server installed (scripts/install-deps.sh)?", s->log_path_, why))
    return s;
  if (!ChildRunning(s->pid_)) s->pid_ = -1;
  return nullptr;
}

SshdServer* SshdServer::Shared(std::string* why) { return SharedServer<SshdServer>(why); }

SshdServer::~SshdServer() {
  StopChild(pid_);
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string SshdServer::Url(const std::string& sub, const std::string& extra_query) const {
  return "sftp://" + user_ + "@127.0.0.1:" + std::to_string(port_) + data_dir_ + "/" + sub + "?key=" + key_path_ +
         "&known-hosts=" + known_hosts_ + extra_query;
}

}  // namespace replite::testing
