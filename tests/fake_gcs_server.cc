#include "fake_gcs_server.h"

#include <curl/curl.h>
#include <unistd.h>

#include <fstream>

#include "server_process.h"

namespace replite::testing {
namespace {

const char* kScript = R"PY(
import base64, hashlib, json, sys, threading, time, urllib.parse, urllib.request, uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

port, token_server = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
buckets = {}   # name -> {key: object}
uploads = {}   # upload id -> {"bucket", "key", "parts": {n: bytes}, "meta"}
stats = {"requests": 0, "tokens": []}
denied = set()  # buckets whose IAM policy grants the caller nothing (403 AccessDenied)
last_gen = [0]

def new_generation():
    # Like GCS: microseconds since the epoch, strictly increasing.
    last_gen[0] = max(last_gen[0] + 1, int(time.time() * 1e6))
    return last_gen[0]

def token_ok(token):
    # Asked on every request, so a revoked token is refused at once.
    try:
        url = token_server + "/tokeninfo?access_token=" + urllib.parse.quote(token, safe="")
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(json.loads(r.read())["expires_in"]) > 0
    except Exception:
        return False

def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass

    def send(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", str(headers_len(headers)))
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, ecode, message, details=""):
        body = ("<?xml version='1.0' encoding='UTF-8'?><Error><Code>%s</Code><Message>%s</Message>%s</Error>"
                % (ecode, escape(message), "<Details>%s</Details>" % escape(details) if details else "")).encode()
        self.send(code, b"" if self.command == "HEAD" else body,
                  [("Content-Type", "application/xml; charset=UTF-8")])

    def parse(self):
        u = urllib.parse.urlsplit(self.path)
        parts = u.path.split("/", 2)
        self.bucket = urllib.parse.unquote(parts[1]) if len(parts) > 1 else ""
        self.key = urllib.parse.unquote(parts[2]) if len(parts) > 2 else ""
        self.q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        n = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(n) if n else b""

    def authorized(self):
        h = self.headers.get("Authorization", "")
        if not h.startswith("Bearer "):
            self.error(401, "AuthenticationRequired", "Authentication required.")
            return False
        token = h[7:]
        if not token_ok(token):
            self.error(401, "AuthenticationRequired", "Invalid Credentials")
            return False
        with lock:
            if token not in stats["tokens"]:
                stats["tokens"].append(token)
        return True

    def object_headers(self, o):
        h = [("ETag", '"%s"' % o["md5"].hex()), ("x-goog-generation", str(o["generation"])),
             ("x-goog-metageneration", "1"), ("x-goog-stored-content-length", str(len(o["data"]))),
             ("x-goog-hash", "md5=" + base64.b64encode(o["md5"]).decode()),
             ("Last-Modified", formatdate(o["mtime"], usegmt=True)), ("Content-Type", "application/octet-stream")]
        return h + [(k, v) for k, v in o["meta"].items()]

    def precondition(self, objs):
        # x-goog-if-generation-match: 0 = only if absent; N = only if the
        # live generation is N. GCS has no ETag conditions on writes.
        g = self.headers.get("x-goog-if-generation-match")
        if g is None:
            return True
        cur = objs.get(self.key)
        if not g.isdigit() or (int(g) == 0 and cur) or (int(g) != 0 and (not cur or cur["generation"] != int(g))):
            self.error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.",
                       "Condition on generation failed.")
            return False
        return True

    def store(self, objs, data):
        o = {"data": data, "md5": hashlib.md5(data).digest(), "generation": new_generation(), "mtime": time.time(),
             "meta": {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("x-goog-meta-")}}
        objs[self.key] = o
        return o

    def handle_any(self):
        self.parse()
        if self.path == "/_stats":
            with lock:
                return self.send(200, json.dumps(stats).encode(), [("Content-Type", "application/json")])
        if self.path.startswith("/_deny?bucket="):
            with lock:
                denied.add(self.q["bucket"])
            return self.send(200)
        with lock:
            stats["requests"] += 1
        if not self.authorized():
            return
        for h in ("If-Match", "If-None-Match"):
            if self.command in ("PUT", "POST") and h in self.headers:
                return self.error(400, "InvalidArgument", "%s is not supported on writes: use "
                                  "x-goog-if-generation-match" % h)
        with lock:
            if self.command == "PUT" and not self.key:
                buckets.setdefault(self.bucket, {})
                return self.send(200)
            objs = buckets.get(self.bucket)
            if self.bucket in denied:
                return self.error(403, "AccessDenied", "Access denied.",
                                  "replite-store@example-project.iam.gserviceaccount.com does not have "
                                  "storage.objects.create access to the Google Cloud Storage object.")
            if objs is None:
                return self.error(404, "NoSuchBucket", "The specified bucket does not exist.")
            if not self.key:
                if self.command != "GET":
                    return self.error(405, "MethodNotAllowed", "The specified method is not allowed.")
                return self.list_uploads() if "uploads" in self.q else self.list(objs)
            return getattr(self, "object_" + self.command)(objs)

    def list(self, objs):
        if self.q.get("list-type") != "2":
            return self.error(400, "InvalidArgument", "this fake serves list-type=2 only")
        prefix, max_keys = self.q.get("prefix", ""), int(self.q.get("max-keys", "1000"))
        max_keys = max(1, min(max_keys, 1000))
        after = self.q.get("start-after", "")
        if "continuation-token" in self.q:
            after = base64.urlsafe_b64decode(self.q["continuation-token"].encode()).decode()
        keys = sorted(k for k in objs if k.startswith(prefix) and k > after)
        page, more = keys[:max_keys], len(keys) > max_keys
        x = ["<?xml version='1.0' encoding='UTF-8'?><ListBucketResult xmlns='http://doc.s3.amazonaws.com/2006-03-01'>",
             "<Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount><MaxKeys>%d</MaxKeys><IsTruncated>%s</IsTruncated>"
             % (escape(self.bucket), escape(prefix), len(page), max_keys, "true" if more else "false")]
        for k in page:
            o = objs[k]
            x.append("<Contents><Key>%s</Key><Generation>%d</Generation><MetaGeneration>1</MetaGeneration>"
                     "<LastModified>%s</LastModified><ETag>\"%s\"</ETag><Size>%d</Size></Contents>"
                     % (escape(k), o["generation"], iso(o["mtime"]), o["md5"].hex(), len(o["data"])))
        if more:
            x.append("<NextContinuationToken>%s</NextContinuationToken>"
                     % base64.urlsafe_b64encode(page[-1].encode()).decode())
        x.append("</ListBucketResult>")
        self.send(200, "".join(x).encode(), [("Content-Type", "application/xml; charset=UTF-8")])

    def list_uploads(self):
        prefix, max_uploads = self.q.get("prefix", ""), max(1, min(int(self.q.get("max-uploads", "1000")), 1000))
        after = (self.q.get("key-marker", ""), self.q.get("upload-id-marker", ""))
        ups = sorted((u["key"], uid) for uid, u in uploads.items()
                     if u["bucket"] == self.bucket and u["key"].startswith(prefix) and (u["key"], uid) > after)
        page, more = ups[:max_uploads], len(ups) > max_uploads
        x = ["<?xml version='1.0' encoding='UTF-8'?><ListMultipartUploadsResult><Bucket>%s</Bucket>"
             "<IsTruncated>%s</IsTruncated>" % (escape(self.bucket), "true" if more else "false")]
        if more:
            x.append("<NextKeyMarker>%s</NextKeyMarker><NextUploadIdMarker>%s</NextUploadIdMarker>"
                     % (escape(page[-1][0]), page[-1][1]))
        for key, uid in page:
            x.append("<Upload><Key>%s</Key><UploadId>%s</UploadId><Initiated>%s</Initiated></Upload>"
                     % (escape(key), uid, iso(uploads[uid]["initiated"])))
        x.append("</ListMultipartUploadsResult>")
        self.send(200, "".join(x).encode(), [("Content-Type", "application/xml; charset=UTF-8")])

    def object_PUT(self, objs):
        if "uploadId" in self.q:
            up = uploads.get(self.q["uploadId"])
            if not up or up["key"] != self.key:
                return self.error(404, "NoSuchUpload", "The requested upload was not found.")
            up["parts"][int(self.q.get("partNumber", "0"))] = self.body
            return self.send(200, b"", [("ETag", '"%s"' % hashlib.md5(self.body).hexdigest())])
        md5 = self.headers.get("Content-MD5")
        if md5 is not None and md5 != base64.b64encode(hashlib.md5(self.body).digest()).decode():
            return self.error(400, "BadDigest", "The Content-MD5 you specified did not match what was received.")
        if not self.precondition(objs):
            return
        o = self.store(objs, self.body)
        self.send(200, b"", [h for h in self.object_headers(o) if h[0] in ("ETag", "x-goog-generation",
                                                                             "x-goog-metageneration", "x-goog-hash")])

    def object_POST(self, objs):
        if "uploads" in self.q:
            uid = uuid.uuid4().hex
            uploads[uid] = {"key": self.key, "parts": {}, "bucket": self.bucket, "initiated": time.time(), "meta": {k.lower(): v for k, v in self.headers.items()
                                                                   if k.lower().startswith("x-goog-meta-")}}
            body = ("<?xml version='1.0' encoding='UTF-8'?><InitiateMultipartUploadResult><Bucket>%s</Bucket>"
                    "<Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>"
                    % (escape(self.bucket), escape(self.key), uid)).encode()
            return self.send(200, body, [("Content-Type", "application/xml")])
        if "uploadId" in self.q:
            up = uploads.get(self.q["uploadId"])
            if not up or up["key"] != self.key:
                return self.error(404, "NoSuchUpload", "The requested upload was not found.")
            import re
            nums = [int(n) for n in re.findall(r"<PartNumber>(\d+)</PartNumber>", self.body.decode())]
            if not nums or nums != sorted(nums) or any(n not in up["parts"] for n in nums):
                return self.error(400, "InvalidPart", "One or more of the specified parts could not be found.")
            if not self.precondition(objs):
                return
            del uploads[self.q["uploadId"]]
            o = self.store(objs, b"".join(up["parts"][n] for n in nums))
            o["meta"] = up["meta"]
            body = ("<?xml version='1.0' encoding='UTF-8'?><CompleteMultipartUploadResult><Bucket>%s</Bucket>"
                    "<Key>%s</Key><ETag>\"%s-%d\"</ETag></CompleteMultipartUploadResult>"
                    % (escape(self.bucket), escape(self.key), o["md5"].hex(), len(nums))).encode()
            return self.send(200, body, [("Content-Type", "application/xml"), ("x-goog-generation", str(o["generation"]))])
        self.error(400, "InvalidArgument", "unsupported POST")

    def object_GET(self, objs, head=False):
        o = objs.get(self.key)
        if not o:
            return self.error(404, "NoSuchKey", "The specified key does not exist.")
        data, size = o["data"], len(o["data"])
        rng = self.headers.get("Range")
        if rng and not head:
            a, _, b = rng[len("bytes="):].partition("-")
            a = int(a)
            b = min(int(b), size - 1) if b else size - 1
            if a >= size:
                return self.error(416, "InvalidRange", "The requested range cannot be satisfied.")
            return self.send(206, data[a:b + 1],
                             self.object_headers(o) + [("Content-Range", "bytes %d-%d/%d" % (a, b, size))])
        self.send(200, data, self.object_headers(o))

    def object_HEAD(self, objs):
        o = objs.get(self.key)
        if not o:
            return self.error(404, "NoSuchKey", "")
        self.head_len = len(o["data"])
        self.send(200, b"", self.object_headers(o))

    def object_DELETE(self, objs):
        if "uploadId" in self.q:  # AbortMultipartUpload: the object is left alone
            up = uploads.get(self.q["uploadId"])
            if not up or up["key"] != self.key:
                return self.error(404, "NoSuchUpload", "The requested upload was not found.")
            del uploads[self.q["uploadId"]]
            return self.send(204)
        if not objs.get(self.key):
            return self.error(404, "NoSuchKey", "The specified key does not exist.")
        if not self.precondition(objs):
            return
        del objs[self.key]
        self.send(204)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

def headers_len(headers):
    for k, v in headers:
        if k == "x-goog-stored-content-length":
            return int(v)
    return 0

ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
)PY";

size_t Append(char* p, size_t s, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, s * n);
  return s * n;
}

// One request with libcurl's easy API (independent of the HttpClient
// under test): the status, and the body in *body.
long Request(const std::string& method, const std::string& url, const std::string& bearer, std::string* body) {
  CURL* e = curl_easy_init();
  if (!e) return 0;
  curl_slist* headers = nullptr;
  if (!bearer.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + bearer).c_str());
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "HEAD") curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  if (method == "PUT") curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
  CURLcode rc = curl_easy_perform(e);
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(e);
  curl_slist_free_all(headers);
  return rc == CURLE_OK ? code : 0;
}

}  // namespace

std::unique_ptr<FakeGcsServer> FakeGcsServer::Start(const std::string& token_server, std::string* why) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::unique_ptr<FakeGcsServer> f(new FakeGcsServer());
  PythonServer ps;
  const bool started = StartPythonServer("fakegcs", kScript, {token_server}, &ps, why);
  f->endpoint_ = ps.endpoint;
  f->script_path_ = ps.script_path;
  f->log_path_ = ps.log_path;
  f->pid_ = ps.pid;
  if (!started) return nullptr;
  FakeGcsServer* raw = f.get();
  if (WaitUntilUp(f->pid_, [raw] { return raw->Requests() >= 0; }, "the fake GCS server (python3)",
                  "is python3 installed?", f->log_path_, why))
    return f;
  if (!ChildRunning(f->pid_)) f->pid_ = -1;
  return nullptr;
}

FakeGcsServer::~FakeGcsServer() {
  StopChild(pid_);
  if (!script_path_.empty()) unlink(script_path_.c_str());
  if (!log_path_.empty()) unlink(log_path_.c_str());
}

bool FakeGcsServer::DenyBucket(const std::string& bucket) const {
  std::string body;
  return Request("GET", endpoint_ + "/_deny?bucket=" + bucket, "", &body) == 200;
}

bool FakeGcsServer::CreateBucket(const std::string& bucket, const std::string& token) const {
  std::string body;
  return Request("PUT", endpoint_ + "/" + bucket, token, &body) == 200;
}

long FakeGcsServer::Raw(const std::string& method, const std::string& path, const std::string& bearer,
                        std::string* body) const {
  std::string ignored;
  return Request(method, endpoint_ + path, bearer, body ? body : &ignored);
}

std::string FakeGcsServer::Stats() const {
  std::string body;
  return Request("GET", endpoint_ + "/_stats", "", &body) == 200 ? body : "";
}

int FakeGcsServer::Requests() const {
  const std::string s = Stats();
  const size_t p = s.find("\"requests\":");
  return p == std::string::npos ? -1 : std::atoi(s.c_str() + p + 11);
}

std::vector<std::string> FakeGcsServer::TokensSeen() const {
  // {"requests": N, "tokens": ["a", "b"]}: tokens hold no quotes.
  const std::string s = Stats();
  std::vector<std::string> out;
  size_t p = s.find("\"tokens\":");
  if (p == std::string::npos) return out;
  p = s.find('[', p);
  const size_t end = s.find(']', p);
  while (p != std::string::npos && (p = s.find('"', p + 1)) < end) {
    const size_t q = s.find('"', p + 1);
    out.push_back(s.substr(p + 1, q - p - 1));
    p = q;
  }
  return out;
}

}  // namespace replite::testing
