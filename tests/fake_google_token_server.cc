#include "fake_google_token_server.h"

#include <curl/curl.h>
#include <unistd.h>

#include <fstream>

#include "server_process.h"

namespace replite::testing {
namespace {

const char* kScript = R"PY(
import base64, json, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

port, pub_path, email, expires_in, prefix = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
with open(pub_path, "rb") as f:
    pub = serialization.load_pem_public_key(f.read())
issued = 0
live = {}  # token -> when it expires (time.time()), for /tokeninfo

def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

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
    def issue(self):
        global issued
        issued += 1
        token = "%s%d" % (prefix, issued)
        live[token] = time.time() + expires_in
        self.reply(200, {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"})
    def do_GET(self):
        if self.path == "/count":
            return self.reply(200, {"issued": issued})
        if self.path.startswith("/tokeninfo?"):
            # As Google's tokeninfo: seconds left of a token this server
            # issued, 400 invalid_token for an unknown or expired one.
            token = urllib.parse.parse_qs(self.path.split("?", 1)[1]).get("access_token", [""])[0]
            left = live.get(token, 0) - time.time()
            if left <= 0:
                return self.reply(400, {"error": "invalid_token", "error_description": "Invalid Value"})
            return self.reply(200, {"expires_in": str(int(left)), "scope": "https://www.googleapis.com/auth/devstorage.read_write"})
        if self.path == "/computeMetadata/v1/instance/service-accounts/default/token":
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.reply(403, {"error": "forbidden", "error_description": "Missing Metadata-Flavor:Google header."})
            return self.issue()
        self.reply(404, {"error": "not_found"})
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        bad = lambda why: self.reply(400, {"error": "invalid_grant", "error_description": why})
        if self.path.startswith("/revoke?"):
            # As Google's revoke endpoint: the token is dead at once.
            token = urllib.parse.parse_qs(self.path.split("?", 1)[1]).get("token", [""])[0]
            if live.pop(token, None) is None:
                return self.reply(400, {"error": "invalid_token"})
            return self.reply(200, {})
        if self.path != "/token":
            return self.reply(404, {"error": "not_found"})
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return self.reply(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        parts = form.get("assertion", [""])[0].split(".")
        if len(parts) != 3:
            return bad("Invalid JWT.")
        try:
            pub.verify(unb64(parts[2]), (parts[0] + "." + parts[1]).encode(), padding.PKCS1v15(), hashes.SHA256())
        except Exception:
            return bad("Invalid JWT Signature.")
        header, claims = json.loads(unb64(parts[0])), json.loads(unb64(parts[1]))
        if header != {"alg": "RS256", "typ": "JWT"}:
            return bad("Invalid JWT header.")
        if claims.get("iss") != email:
            return bad("Invalid email or User ID")
        if claims.get("aud") != "http://127.0.0.1:%d/token" % port:
            return bad("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe (aud)")
        if "https://www.googleapis.com/auth/devstorage.read_write" not in claims.get("scope", "").split(" "):
            return bad("Invalid scope")
        if not 0 < claims["exp"] - claims["iat"] <= 3600 or claims["exp"] < time.time():
            return bad("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe")
        self.issue()

ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
)PY";

size_t Append(char* p, size_t s, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, s * n);
  return s * n;
}

}  // namespace

std::unique_ptr<FakeGoogleTokenServer> FakeGoogleTokenServer::Start(const std::string& public_key_pem,
                                                                    const std::string& client_email, int expires_in,
                                                                    std::string* why, const std::string& token_prefix) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::unique_ptr<FakeGoogleTokenServer> f(new FakeGoogleTokenServer());
  PythonServer ps;
  const bool started = StartPythonServer("gtoken", kScript, {public_key_pem, client_email, std::to_string(expires_in), token_prefix}, &ps, why);
  f->endpoint_ = ps.endpoint;
  f->script_path_ = ps.script_path;
  f->log_path_ = ps.log_path;
  f->pid_ = ps.pid;
  if (!started) return nullptr;
  FakeGoogleTokenServer* raw = f.get();
  if (WaitUntilUp(f->pid_, [raw] { return raw->TokensIssued() >= 0; }, "the fake Google token server (python3)",
                  "is python3 with its cryptography module installed (python3-cryptography)?", f->log_path_, why))
    return f;
  if (!ChildRunning(f->pid_)) f->pid_ = -1;
  return nullptr;
}

FakeGoogleTokenServer::~FakeGoogleTokenServer() {
  StopChild(pid_);
  if (!script_path_.empty()) unlink(script_path_.c_str());
  if (!log_path_.empty()) unlink(log_path_.c_str());
}

bool FakeGoogleTokenServer::Revoke(const std::string& token) const {
  CURL* e = curl_easy_init();
  if (!e) return false;
  std::string body;
  const std::string url = endpoint_ + "/revoke?token=" + token;  // test tokens need no escaping
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
  CURLcode rc = curl_easy_perform(e);
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(e);
  return rc == CURLE_OK && code == 200;
}

int FakeGoogleTokenServer::TokensIssued() const {
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
