#include "fake_token_server.h"

#include <curl/curl.h>
#include <unistd.h>

#include <fstream>
#include <vector>

#include "server_process.h"

namespace replite::testing {
namespace {

const char* kScript = R"PY(
import base64, json, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, client_id, tenant, assertion_file, expires_in = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
issued = 0

def b64(d):
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

def jwt():
    now = int(time.time())
    return ".".join([b64({"alg": "RS256", "typ": "JWT"}),
                     b64({"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/%s/" % tenant,
                          "iat": now, "nbf": now - 60, "exp": now + 3600, "oid": "fake"}),
                     "ZmFrZS1zaWduYXR1cmU"])

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def issue(self, expires):
        global issued
        issued += 1
        self.reply(200, {"token_type": "Bearer", "expires_in": expires, "access_token": jwt()})
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/count":
            return self.reply(200, {"issued": issued})
        if u.path == "/metadata/identity/oauth2/token":
            if self.headers.get("Metadata") != "true":
                return self.reply(400, {"error": "invalid_request", "error_description": "Required metadata header not specified"})
            if q.get("resource") != ["https://storage.azure.com/"] or q.get("api-version") != ["2018-02-01"]:
                return self.reply(400, {"error": "invalid_resource", "error_description": "bad resource or api-version"})
            if q.get("client_id", [client_id]) != [client_id]:
                return self.reply(400, {"error": "invalid_request", "error_description": "Identity not found"})
            return self.issue(str(expires_in))  # IMDS sends numbers as strings
        self.reply(404, {"error": "not_found"})
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        if self.path != "/%s/oauth2/v2.0/token" % tenant:
            return self.reply(400, {"error": "invalid_tenant", "error_description": "AADSTS90002: Tenant not found."})
        with open(assertion_file) as f:
            assertion = f.read().strip()
        want = {"grant_type": ["client_credentials"], "client_id": [client_id],
                "client_assertion_type": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
                "client_assertion": [assertion], "scope": ["https://storage.azure.com/.default"]}
        for k, v in want.items():
            if form.get(k) != v:
                return self.reply(400, {"error": "invalid_client", "error_description": "AADSTS700213: bad " + k})
        self.issue(expires_in)

ThreadingHTTPServer(("127.0.0.1", int(port)), H).serve_forever()
)PY";

size_t Append(char* p, size_t s, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, s * n);
  return s * n;
}

}  // namespace

std::unique_ptr<FakeTokenServer> FakeTokenServer::Start(const std::string& client_id, const std::string& tenant,
                                                        const std::string& assertion_file, int expires_in,
                                                        std::string* why) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::unique_ptr<FakeTokenServer> f(new FakeTokenServer());
  PythonServer ps;
  const bool started = StartPythonServer("token", kScript, {client_id, tenant, assertion_file, std::to_string(expires_in)}, &ps, why);
  f->endpoint_ = ps.endpoint;
  f->script_path_ = ps.script_path;
  f->log_path_ = ps.log_path;
  f->pid_ = ps.pid;
  if (!started) return nullptr;
  FakeTokenServer* raw = f.get();
  if (WaitUntilUp(f->pid_, [raw] { return raw->TokensIssued() >= 0; }, "the fake token server (python3)",
                  "is python3 installed?", f->log_path_, why))
    return f;
  if (!ChildRunning(f->pid_)) f->pid_ = -1;
  return nullptr;
}

FakeTokenServer::~FakeTokenServer() {
  StopChild(pid_);
  if (!script_path_.empty()) unlink(script_path_.c_str());
  if (!log_path_.empty()) unlink(log_path_.c_str());
}

int FakeTokenServer::TokensIssued() const {
  CURL* e = curl_easy_init();
  if (!e) return -1;
  std::string body;
  const std::string url = endpoint_ + "/count";
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
  CURLcode rc = curl_easy_perform(e);
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(e);
  const size_t p = body.find(':');
  if (rc != CURLE_OK || code != 200 || p == std::string::npos) return -1;
  return std::atoi(body.c_str() + p + 1);
}

}  // namespace replite::testing
