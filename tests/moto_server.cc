#include "moto_server.h"

#include <curl/curl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "server_process.h"

namespace replite::testing {
namespace {

// Runs moto_server's entry point with HTTP keep-alive (see the header).
const char* kLauncher = R"PY(
import sys
import werkzeug.serving as ws

class _NoSelector:  # werkzeug drains the socket after each response; with
    def register(self, *a, **k): pass  # keep-alive that would eat the next
    def select(self, timeout=None): return []  # request, so it is disabled
    def close(self): pass

class _Selectors:
    DefaultSelector = _NoSelector
    EVENT_READ = 1

ws.selectors = _Selectors
_send_header = ws.WSGIRequestHandler.send_header

def _keep_alive(self, k, v):
    if k.lower() == "connection" and v.lower() == "close":
        return
    _send_header(self, k, v)

ws.WSGIRequestHandler.send_header = _keep_alive
ws.WSGIRequestHandler.disable_nagle_algorithm = True  # small responses must not wait for a delayed ACK

class _Body:  # request body limited to Content-Length, drained afterwards
    def __init__(self, raw, n): self.raw, self.left = raw, n
    def read(self, n=-1):
        if self.left <= 0: return b""
        n = self.left if n is None or n < 0 else min(n, self.left)
        d = self.raw.read(n); self.left -= len(d); return d
    def readline(self, n=-1):
        if self.left <= 0: return b""
        n = self.left if n is None or n < 0 else min(n, self.left)
        d = self.raw.readline(n); self.left -= len(d); return d
    def __iter__(self):
        while True:
            line = self.readline()
            if not line: return
            yield line
    def drain(self):
        while self.left > 0 and self.read(1 << 20): pass

def _wrap(app):
    def wrapped(environ, start_response):
        body = None
        if not environ.get("wsgi.input_terminated"):
            body = _Body(environ["wsgi.input"], int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = body
        try:
            return list(app(environ, start_response))
        finally:
            if body is not None: body.drain()
    return wrapped

import moto.server as ms
_run_simple = ms.run_simple
ms.run_simple = lambda host, port, app, **kw: _run_simple(host, port, _wrap(app), **kw)
ms.main(sys.argv[1:])
)PY";

size_t Append(char* p, size_t s, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, s * n);
  return s * n;
}

}  // namespace

bool AllowS3Skip() {
  const char* v = std::getenv("REPLITE_ALLOW_S3_SKIP");
  return v && std::string(v) == "1";
}

Status MotoServer::Request(const std::string& method, const std::string& path, const std::string& body,
                           long* status, std::string* response) {
  CURL* e = curl_easy_init();
  if (!e) return Status::Internal("curl_easy_init");
  std::string url = endpoint_ + path;
  std::string out;
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
  if (tls_) {  // moto's certificate is self-signed
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
  // Not form-encoded: moto's reset-auth reads the raw body.
  curl_slist* hdrs = curl_slist_append(nullptr, "Content-Type: text/plain");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
  if (method == "POST" || method == "PUT" || !body.empty()) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  CURLcode rc = curl_easy_perform(e);
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(e);
  curl_slist_free_all(hdrs);
  if (status) *status = code;
  if (response) *response = out;
  if (rc != CURLE_OK) return Status::Unavailable(method + " " + url + ": " + curl_easy_strerror(rc));
  return Status::OK();
}

std::unique_ptr<MotoServer> MotoServer::Start(std::string* why, bool tls) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::unique_ptr<MotoServer> m(new MotoServer());
  m->port_ = FreePort();
  if (m->port_ == 0) {
    *why = "no free TCP port on 127.0.0.1";
    return nullptr;
  }
  m->tls_ = tls;
  m->endpoint_ = std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(m->port_);
  const std::string base = "/tmp/replite-moto-" + std::to_string(getpid()) + "-" + std::to_string(m->port_);
  m->script_path_ = base + ".py";
  m->log_path_ = base + ".log";
  {
    std::ofstream f(m->script_path_);
    f << kLauncher;
    if (!f) {
      *why = "cannot write " + m->script_path_;
      return nullptr;
    }
  }
  const std::string port = std::to_string(m->port_);
  std::vector<std::string> argv = {"python3", m->script_path_, "-H", "127.0.0.1", "-p", port};
  if (tls) argv.push_back("-s");
  pid_t pid = SpawnLogged(argv, m->log_path_, why);
  if (pid < 0) return nullptr;
  m->pid_ = pid;
  auto up = [&] {
    long code = 0;
    return m->Request("GET", "/moto-api/", "", &code, nullptr).ok() && code == 200;
  };
  if (WaitUntilUp(pid, up, "moto (python3 running moto.server.main)",
                  "is moto installed (pip install 'moto[server]')?", m->log_path_, why))
    return m;
  if (!ChildRunning(pid)) m->pid_ = -1;
  return nullptr;
}

MotoServer* MotoServer::Shared(std::string* why) { return SharedServer<MotoServer>(why); }

MotoServer::~MotoServer() {
  StopChild(pid_);
  if (!script_path_.empty()) unlink(script_path_.c_str());
  if (!log_path_.empty()) unlink(log_path_.c_str());
}

Status MotoServer::Reset() {
  long code = 0;
  Status s = Request("POST", "/moto-api/reset", "", &code, nullptr);
  if (s.ok() && code != 200) return Status::Internal("moto reset: HTTP " + std::to_string(code));
  return s;
}

Status MotoServer::CreateBucket(const std::string& bucket) {
  long code = 0;
  std::string body;
  Status s = Request("PUT", "/" + bucket, "", &code, &body);
  if (s.ok() && code != 200) return Status::Internal("create bucket " + bucket + ": HTTP " + std::to_string(code) + " " + body);
  return s;
}

Status MotoServer::SetAuthAfter(const std::string& count) {
  long code = 0;
  Status s = Request("POST", "/moto-api/reset-auth", count, &code, nullptr);
  if (s.ok() && code != 200) return Status::Internal("moto reset-auth: HTTP " + std::to_string(code));
  return s;
}

}  // namespace replite::testing
