// What the test servers (moto, azurite) share: a free loopback port, a
// child process started with its output in a log file and killed with the
// test process, and the tail of that log for failure messages.
//
// Thread-safety: stateless functions.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace replite::testing {

// A TCP port on 127.0.0.1 that was free a moment ago; 0 if none.
int FreePort();

// Forks and execs argv (argv[0] looked up in PATH) with stdout and stderr
// in log_path, stdin from /dev/null, SIGKILL when the test process dies,
// and its working directory `cwd` ("" = ours). Returns the pid, or -1 (and
// *why).
pid_t SpawnLogged(const std::vector<std::string>& argv, const std::string& log_path, std::string* why,
                  const std::string& cwd = "");

// A small test server written in Python (a fake token endpoint, a fake
// GCS): its script is written to /tmp/replite-<tag>-<pid>-<port>.py and run
// as `python3 SCRIPT PORT ARGS...` on a free port, logging to the .log
// beside it. False (and *why) if no port is free, the script cannot be
// written or python3 cannot be started; the caller waits until it is up.
struct PythonServer {
  int port = 0;
  std::string endpoint;  // http://127.0.0.1:PORT
  std::string script_path, log_path;
  pid_t pid = -1;
};
bool StartPythonServer(const std::string& tag, const char* script, const std::vector<std::string>& args,
                       PythonServer* out, std::string* why);

// True while the child runs; false once it exited (and is reaped).
bool ChildRunning(pid_t pid);

// SIGTERM, up to 1 s to exit, then SIGKILL; reaps it.
void StopChild(pid_t pid);

// The last 1500 bytes of a file (a server's log).
std::string Tail(const std::string& path);

// Polls up() every 100 ms for up to 60 s. False (and *why, with the tail of
// the log) when the child exits first (`exit_hint` says what to check) or
// does not come up in time.
bool WaitUntilUp(pid_t pid, const std::function<bool()>& up, const std::string& what, const std::string& exit_hint,
                 const std::string& log_path, std::string* why);

// The process-wide instance of a test server: Server::Start(&why) on the
// first call, stopped at exit; nullptr (and *why) if it cannot start.
template <typename Server>
Server* SharedServer(std::string* why) {
  static std::mutex mu;
  static std::unique_ptr<Server> shared;
  static std::string error;
  static bool tried = false;
  std::lock_guard<std::mutex> l(mu);
  if (!tried) {
    tried = true;
    shared = Server::Start(&error);
  }
  if (!shared) *why = error;
  return shared.get();
}

}  // namespace replite::testing
