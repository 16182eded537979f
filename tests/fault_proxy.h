// FaultProxy: tests/fault_proxy.py (an HTTP fault-injecting proxy) as a
// child process in front of moto, with its control API; S3Through: moto +
// proxy + a bucket, for tests that replicate through faults (fault_proxy.py
// documents the modes).
//
// Thread-safety: Control/Set may be called from any thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

namespace replite::test {

class FaultProxy {
 public:
  // Starts the proxy in front of 127.0.0.1:upstream_port; nullptr (and
  // *why) when it does not come up within 15 s.
  static std::unique_ptr<FaultProxy> Start(int upstream_port, std::string* why);
  ~FaultProxy();  // SIGTERM, then SIGKILL
  int port() const { return port_; }
  // GET on the control port ("/set?mode=slowdown&n=3", "/stats"); the body.
  std::string Control(const std::string& target);
  // /set?<query>, REQUIRing "ok".
  void Set(const std::string& query);

 private:
  FaultProxy() = default;
  pid_t pid_ = -1;
  int port_ = 0, control_ = 0;
};

// moto + proxy + a bucket; the URL goes through the proxy.
struct S3Through {
  std::unique_ptr<FaultProxy> proxy;
  std::string url;  // s3://bucket/prefix?region=..&force-path-style=true&endpoint=<proxy>
  std::string direct_url;  // the same, straight to moto
};

// False when moto cannot start and the S3 tests may be skipped
// (REPLITE_ALLOW_S3_SKIP=1); FAILs the test otherwise.
bool SetUpS3(const std::string& bucket, const std::string& prefix, S3Through* out);

}  // namespace replite::test
