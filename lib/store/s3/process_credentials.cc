#include "store/s3/process_credentials.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <map>

#include "store/s3/credential_json.h"
#include "store/s3/flat_json.h"

namespace replite::s3 {
namespace {

constexpr int kTimeoutMs = 60000;
constexpr size_t kMaxOutput = 1 << 20;

class ProcessSource final : public CredentialSource {
 public:
  ProcessSource(std::string command, std::string where) : command_(std::move(command)), where_(std::move(where)) {}

  Status Fetch(TimedCredentials* out) override {
    std::string output;
    Status s = Run(&output);
    if (!s.ok()) return s;
    std::map<std::string, std::string> m;
    if (ParseFlatJson(output, &m).ok() && m["Version"] != "1")
      return Status::Unauthenticated(Describe() + " printed Version '" + m["Version"] + "'; only 1 is understood");
    return ParseCredentialJson(output, Describe(), out);
  }

  std::string Describe() const override { return "the credential_process of " + where_; }

 private:
  Status Run(std::string* output) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return Status::IOError(Describe() + ": pipe: " + strerror(errno));
    const pid_t pid = fork();
    if (pid < 0) {
      close(fds[0]);
      close(fds[1]);
      return Status::IOError(Describe() + ": fork: " + strerror(errno));
    }
    if (pid == 0) {
      dup2(fds[1], 1);
      int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0) dup2(devnull, 0);
      execl("/bin/sh", "sh", "-c", command_.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
    bool timed_out = false;
    char buf[4096];
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        break;
      }
      pollfd p{fds[0], POLLIN, 0};
      int n = poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) continue;
      ssize_t got = read(fds[0], buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      if (output->size() < kMaxOutput) output->append(buf, static_cast<size_t>(got));
    }
    close(fds[0]);
    if (timed_out) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out)
      return Status::Unavailable(Describe() + " did not finish within " + std::to_string(kTimeoutMs / 1000) + " s");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return Status::Unauthenticated(
          Describe() + " failed (" +
          (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                             : "signal " + std::to_string(WTERMSIG(status))) +
          "): run the command by hand to see why");
    return Status::OK();
  }

  const std::string command_;
  const std::string where_;
};

}  // namespace

std::unique_ptr<CredentialSource> NewProcessCredentialSource(std::string command, std::string where) {
  return std::make_unique<ProcessSource>(std::move(command), std::move(where));
}

}  // namespace replite::s3
