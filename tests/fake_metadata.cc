#include "fake_metadata.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

extern char** environ;

namespace replite::test {

std::unique_ptr<FakeMetadata> FakeMetadata::Start(const std::vector<std::string>& extra, std::string* why) {
  auto p = std::unique_ptr<FakeMetadata>(new FakeMetadata());
  int fds[2];
  if (::pipe(fds) != 0) return nullptr;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  std::vector<std::string> args = {"python3", std::string(REPLITE_SOURCE_DIR) + "/tests/fake_aws_metadata.py",
                                   "--parent-pid", std::to_string(::getpid())};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int rc = posix_spawnp(&p->pid_, "python3", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    *why = "cannot spawn python3";
    return nullptr;
  }
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  while (std::chrono::steady_clock::now() < deadline && line.find('\n') == std::string::npos) {
    char buf[256];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) line.append(buf, size_t(n));
    else if (n == 0) break;
    else std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::close(fds[0]);
  if (std::sscanf(line.c_str(), "READY %d", &p->port_) != 1) {
    *why = "fake_aws_metadata.py did not start: '" + line + "'";
    return nullptr;  // the destructor kills it
  }
  return p;
}

FakeMetadata::~FakeMetadata() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int st;
  for (int i = 0; i < 50 && ::waitpid(pid_, &st, WNOHANG) == 0; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (::waitpid(pid_, &st, WNOHANG) == 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &st, 0);
  }
}

std::string FakeMetadata::Get(const std::string& target) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port_));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    (void)!::write(fd, req.data(), req.size());
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, size_t(n));
  }
  ::close(fd);
  size_t p = out.find("\r\n\r\n");
  return p == std::string::npos ? "" : out.substr(p + 4);
}

long FakeMetadata::Stat(const std::string& name) {
  const std::string s = Get("/stats");
  size_t p = s.find("\"" + name + "\": ");
  return p == std::string::npos ? -1 : std::atol(s.c_str() + p + name.size() + 4);
}

EnvVars::EnvVars(const std::vector<std::string>& names) {
  for (const auto& n : names) {
    const char* v = std::getenv(n.c_str());
    saved_[n] = v ? std::optional<std::string>(v) : std::nullopt;
    ::unsetenv(n.c_str());
  }
}

EnvVars::~EnvVars() {
  for (const auto& [n, v] : saved_) {
    if (v) ::setenv(n.c_str(), v->c_str(), 1);
    else ::unsetenv(n.c_str());
  }
}

std::vector<std::string> AwsCredentialVars() {
  return {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
          "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
          "AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
          "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
          "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "AWS_EC2_METADATA_DISABLED",
          "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_REGION", "AWS_DEFAULT_REGION"};
}

}  // namespace replite::test
