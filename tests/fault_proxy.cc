#include "fault_proxy.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "moto_server.h"
#include "test_util.h"

extern char** environ;

namespace replite::test {

using Clock = std::chrono::steady_clock;

std::unique_ptr<FaultProxy> FaultProxy::Start(int upstream_port, std::string* why) {
  auto p = std::unique_ptr<FaultProxy>(new FaultProxy());
  int fds[2];
  if (::pipe(fds) != 0) return nullptr;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  const std::string script = std::string(REPLITE_SOURCE_DIR) + "/tests/fault_proxy.py";
  std::vector<std::string> args = {"python3", script, "--upstream", "127.0.0.1:" + std::to_string(upstream_port),
                                   "--parent-pid", std::to_string(::getpid())};
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
  // Wait (bounded) for "READY <port> <control>".
  std::string line;
  const auto deadline = Clock::now() + std::chrono::seconds(15);
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  while (Clock::now() < deadline && line.find('\n') == std::string::npos) {
    char buf[256];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) line.append(buf, size_t(n));
    else if (n == 0) break;
    else std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::close(fds[0]);
  if (std::sscanf(line.c_str(), "READY %d %d", &p->port_, &p->control_) != 2) {
    *why = "fault_proxy.py did not start: '" + line + "'";
    return nullptr;  // the destructor kills it
  }
  return p;
}

FaultProxy::~FaultProxy() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int st;
    for (int i = 0; i < 50 && ::waitpid(pid_, &st, WNOHANG) == 0; i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (::waitpid(pid_, &st, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &st, 0);
    }
  }
}

std::string FaultProxy::Control(const std::string& target) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(control_));
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

void FaultProxy::Set(const std::string& query) { REQUIRE(Control("/set?" + query) == "ok\n"); }

bool SetUpS3(const std::string& bucket, const std::string& prefix, S3Through* out) {
  testing::MotoServer* m = MotoForTest();
  if (!m) return false;
  std::string why;
  REQUIRE(m->CreateBucket(bucket).ok());
  out->proxy = FaultProxy::Start(m->port(), &why);
  INFO(why);
  REQUIRE(out->proxy);
  const std::string q = "?region=us-east-1&force-path-style=true&endpoint=";
  out->url = "s3://" + bucket + "/" + prefix + q + "http://127.0.0.1:" + std::to_string(out->proxy->port());
  out->direct_url = "s3://" + bucket + "/" + prefix + q + m->endpoint();
  return true;
}

}  // namespace replite::test
