#include "server_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace replite::testing {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

pid_t SpawnLogged(const std::vector<std::string>& argv, const std::string& log_path, std::string* why,
                  const std::string& cwd) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    *why = std::string("fork: ") + std::strerror(errno);
    return -1;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test process
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

bool StartPythonServer(const std::string& tag, const char* script, const std::vector<std::string>& args,
                       PythonServer* out, std::string* why) {
  out->port = FreePort();
  if (out->port == 0) {
    *why = "no free TCP port on 127.0.0.1";
    return false;
  }
  out->endpoint = "http://127.0.0.1:" + std::to_string(out->port);
  const std::string base = "/tmp/replite-" + tag + "-" + std::to_string(getpid()) + "-" + std::to_string(out->port);
  out->script_path = base + ".py";
  out->log_path = base + ".log";
  {
    std::ofstream f(out->script_path);
    f << script;
    if (!f) {
      *why = "cannot write " + out->script_path;
      return false;
    }
  }
  std::vector<std::string> argv = {"python3", out->script_path, std::to_string(out->port)};
  argv.insert(argv.end(), args.begin(), args.end());
  out->pid = SpawnLogged(argv, out->log_path, why);
  return out->pid >= 0;
}

bool ChildRunning(pid_t pid) {
  int st = 0;
  return waitpid(pid, &st, WNOHANG) == 0;
}

void StopChild(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  int st = 0;
  for (int i = 0; i < 50 && waitpid(pid, &st, WNOHANG) == 0; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (waitpid(pid, &st, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
  }
}

std::string Tail(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  return s.size() > 1500 ? s.substr(s.size() - 1500) : s;
}

bool WaitUntilUp(pid_t pid, const std::function<bool()>& up, const std::string& what, const std::string& exit_hint,
                 const std::string& log_path, std::string* why) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (up()) return true;
    if (!ChildRunning(pid)) {
      *why = what + " exited at start-up; " + exit_hint + " log: " + Tail(log_path);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  *why = what + " did not come up within 60 s: " + Tail(log_path);
  return false;
}

}  // namespace replite::testing
