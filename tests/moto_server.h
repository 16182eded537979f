// MotoServer: a real S3 endpoint for tests and benchmarks. Starts moto
// (moto_server's own entry point, moto.server.main) on 127.0.0.1 and a free
// port, waits until GET /moto-api/ answers, and kills it when destroyed.
//
// One detail matters for connection-reuse checks: werkzeug's development
// server, which moto_server runs on, answers every request with
// "Connection: close". The launcher therefore wraps moto's WSGI app so that
// keep-alive works (each request body is drained to its Content-Length, and
// werkzeug's post-response socket drain, which would swallow the next
// pipelined request, is turned off). Everything else is stock moto.
//
// Thread-safety: Shared() is safe to call from any thread; the other
// methods may be called concurrently (each uses its own curl handle).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "replite/status.h"

namespace replite::testing {

class MotoServer {
 public:
  // Starts a new server. On failure returns nullptr and says why. With
  // tls, it serves https with a self-signed certificate (clients must skip
  // verification: insecure-skip-verify=true).
  static std::unique_ptr<MotoServer> Start(std::string* why, bool tls = false);
  // The process-wide server (started on first call, stopped at exit);
  // nullptr (and *why) if it cannot start.
  static MotoServer* Shared(std::string* why);
  ~MotoServer();

  const std::string& endpoint() const { return endpoint_; }  // "http[s]://127.0.0.1:PORT"
  int port() const { return port_; }

  // POST /moto-api/reset: forget every bucket and object.
  Status Reset();
  // Creates a bucket (unsigned request: moto does not check by default).
  Status CreateBucket(const std::string& bucket);
  // Makes moto check credentials and signatures from now on ("0"), or stop
  // checking ("inf"): POST /moto-api/reset-auth.
  Status SetAuthAfter(const std::string& count);
  // A plain request to the server, for setup steps.
  Status Request(const std::string& method, const std::string& path, const std::string& body, long* status,
                 std::string* response);

 private:
  MotoServer() = default;
  pid_t pid_ = -1;
  bool tls_ = false;
  int port_ = 0;
  std::string endpoint_;
  std::string script_path_;
  std::string log_path_;
};

// True when env REPLITE_ALLOW_S3_SKIP=1: S3 tests may skip if moto cannot
// start (CI must not set it).
bool AllowS3Skip();

}  // namespace replite::testing
