#include "http/http_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace replite {

namespace {

std::once_flag g_curl_once;
CURLcode g_curl_init = CURLE_OK;

std::string Lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return r;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) b++;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) e--;
  return std::string(s.substr(b, e - b));
}

// The URL without its query: enough to say what failed, and a presigned
// query string (which carries a signature) never reaches an error message.
std::string UrlForErrors(const std::string& url) { return url.substr(0, url.find('?')); }

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Status TransportStatus(CURLcode rc, const char* detail, const HttpRequest& req) {
  std::string what = req.method + " " + UrlForErrors(req.url) + ": " +
                     (detail && *detail ? std::string(detail) : std::string(curl_easy_strerror(rc)));
  switch (rc) {
    case CURLE_OK:
      return Status::OK();
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
      return Status::FailedPrecondition(what +
                                        " (TLS verification failed: fix the endpoint's certificate, or pass "
                                        "ca-file=PATH for a private CA)");
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Status::InvalidArgument(what);
    case CURLE_OUT_OF_MEMORY:
      return Status::ResourceExhausted(what);
    case CURLE_OPERATION_TIMEDOUT:
      return Status::Unavailable(what + " (timed out)");
    default:
      // Connection refused or reset, DNS failures, truncated replies, HTTP/2
      // stream errors: all worth retrying later.
      return Status::Unavailable(what);
  }
}

}  // namespace

std::string HttpResponse::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return "";
}

// One exchange in progress. Owned by the queue, then by the pool thread
// (through CURLOPT_PRIVATE) until completion.
struct HttpClient::Transfer {
  HttpRequest owned;             // Submit moves the request here
  const HttpRequest* req = nullptr;  // &owned, or the caller's (Perform)
  Callback done;
  HttpResponse resp;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  int fd = -1;
  uint64_t body_pos = 0;  // bytes of the body handed to curl so far
  Status local;           // a failure of ours (file read, watchdog) that caused an abort
  char errbuf[CURL_ERROR_SIZE] = {0};
  // Watchdog state (pool thread): when the exchange was handed to curl, and
  // when its byte counters last moved.
  int64_t start_ms = 0, moved_ms = 0;
  int64_t seen_up = 0, seen_down = 0;

  const std::string& mem_body() const { return req->body_ptr ? *req->body_ptr : req->body; }
  uint64_t body_size() const { return req->body_file.empty() ? mem_body().size() : req->body_length; }
  ~Transfer() {
    if (headers) curl_slist_free_all(headers);
    if (fd >= 0) close(fd);
  }
};

namespace {

size_t OnWrite(char* p, size_t size, size_t n, void* ud) {
  auto* body = static_cast<std::string*>(ud);
  body->append(p, size * n);
  return size * n;
}

size_t OnHeader(char* p, size_t size, size_t n, void* ud) {
  auto* resp = static_cast<HttpResponse*>(ud);
  std::string_view line(p, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    resp->headers.clear();  // a new response (after 100-continue or a redirect)
  } else if (size_t c = line.find(':'); c != std::string_view::npos) {
    resp->headers.emplace_back(Lower(Trim(line.substr(0, c))), Trim(line.substr(c + 1)));
  }
  return size * n;
}

}  // namespace

HttpClient::HttpClient(const HttpClientOptions& options)
    : options_(options),
      stall_abandon_ms_(options.stall_abandon_ms > 0
                            ? options.stall_abandon_ms
                            : int64_t(options.connect_timeout_ms) + int64_t(options.low_speed_time_s) * 1000 +
                                  options.abandon_margin_ms) {}

Status HttpClient::Open(const HttpClientOptions& options, std::shared_ptr<HttpClient>* out) {
  std::shared_ptr<HttpClient> c(new HttpClient(options));
  Status s = c->Init();
  if (!s.ok()) return s;
  *out = std::move(c);
  return Status::OK();
}

Status HttpClient::Init() {
  std::call_once(g_curl_once, [] { g_curl_init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (g_curl_init != CURLE_OK)
    return Status::Internal(std::string("curl_global_init: ") + curl_easy_strerror(g_curl_init));
  CURLM* m = curl_multi_init();
  if (!m) return Status::Internal("curl_multi_init failed");
  curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(std::max(1, options_.max_connections)));
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS,
                    static_cast<long>(std::max(1, options_.max_connections_per_host)));
  // Keep as many idle connections cached as we may open, so keep-alive
  // reuse is not defeated by curl's default cache size.
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, static_cast<long>(std::max(1, options_.max_connections)));
  curl_multi_setopt(m, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  multi_ = m;
  thread_ = std::thread([this] { Loop(); });
  return Status::OK();
}

HttpClient::~HttpClient() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  if (multi_) curl_multi_wakeup(static_cast<CURLM*>(multi_));
  if (thread_.joinable()) thread_.join();
  for (void* e : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(e));
  if (multi_) curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void HttpClient::Submit(HttpRequest request, Callback done) {
  auto t = std::make_unique<Transfer>();
  t->owned = std::move(request);
  t->req = &t->owned;
  t->done = std::move(done);
  Enqueue(std::move(t));
}

void HttpClient::Enqueue(std::unique_ptr<Transfer> t) {
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(t));
      // Woken under the lock: the destructor cannot free the multi handle
      // between our push and this call.
      curl_multi_wakeup(static_cast<CURLM*>(multi_));
      return;
    }
  }
  Complete(std::move(t), Status::Cancelled("HTTP client is shutting down"));
}

namespace {
thread_local const void* tls_pool_owner = nullptr;  // set on the pool thread
}

Status HttpClient::Perform(const HttpRequest& request, HttpResponse* response) {
  if (tls_pool_owner == this)
    return Status::Internal("HttpClient::Perform called from a completion callback (would deadlock)");
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Status status;
  } w;
  auto t = std::make_unique<Transfer>();
  t->req = &request;
  t->done = [&w, response](Status s, HttpResponse&& r) {
    *response = std::move(r);
    std::lock_guard<std::mutex> l(w.mu);
    w.status = std::move(s);
    w.done = true;
    w.cv.notify_one();
  };
  Enqueue(std::move(t));
  std::unique_lock<std::mutex> l(w.mu);
  w.cv.wait(l, [&] { return w.done; });
  return w.status;
}

HttpStats HttpClient::Stats() const {
  HttpStats s;
  s.requests = requests_.load(std::memory_order_relaxed);
  s.new_connections = new_connections_.load(std::memory_order_relaxed);
  s.transport_errors = transport_errors_.load(std::memory_order_relaxed);
  s.bytes_sent = bytes_sent_.load(std::memory_order_relaxed);
  s.bytes_received = bytes_received_.load(std::memory_order_relaxed);
  s.in_flight = in_flight_.load(std::memory_order_relaxed);
  return s;
}

void HttpClient::Complete(std::unique_ptr<Transfer> t, Status s) {
  Callback cb = std::move(t->done);
  HttpResponse resp = std::move(t->resp);
  t.reset();  // close the file and free the header list before the callback runs
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  cb(std::move(s), std::move(resp));
}

void HttpClient::Start(std::unique_ptr<Transfer> t) {
  const HttpRequest& req = *t->req;
  if (!req.body_file.empty()) {
    t->fd = open(req.body_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (t->fd < 0) {
      int err = errno;
      Status s = err == ENOENT ? Status::NotFound("open " + req.body_file + ": " + std::strerror(err))
                               : Status::IOError("open " + req.body_file + ": " + std::strerror(err));
      Complete(std::move(t), s);
      return;
    }
  }
  CURL* e;
  if (!idle_handles_.empty()) {
    e = static_cast<CURL*>(idle_handles_.back());
    idle_handles_.pop_back();
  } else {
    e = curl_easy_init();
    if (!e) {
      Complete(std::move(t), Status::ResourceExhausted("curl_easy_init failed"));
      return;
    }
  }
  t->easy = e;

  curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  // Wait for an HTTP/2 connection being set up rather than open a parallel
  // one: multiplexing is what keeps the connection count low. Only over
  // TLS, the only place HTTP/2 is asked for (CURL_HTTP_VERSION_2TLS): over
  // plain http libcurl 7.88 still parks a transfer ("pending") behind a
  // connection whose multiplexing is not known yet, and a pending transfer
  // is under no timeout (curl issue #13227, see Loop): when that connection
  // was reset (a store outage) the transfer sat there until our watchdog.
  if (req.url.rfind("https://", 0) == 0) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout_ms));
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(options_.low_speed_limit_bytes));
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.low_speed_time_s));
  if (req.timeout_ms > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout_ms));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  const bool verify = options_.verify_tls && req.verify_tls;
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
  const std::string& ca = req.ca_file.empty() ? options_.ca_file : req.ca_file;
  if (!ca.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, ca.c_str());

  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t->resp.body);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t->resp);

  const bool has_body = req.method == "PUT" || req.method == "POST";
  if (req.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (has_body) {
    // UPLOAD sends the body through the read callback with a known
    // Content-Length; CUSTOMREQUEST turns the PUT into a POST when needed.
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(t->body_size()));
    if (req.method != "PUT") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    curl_read_callback rd = [](char* buf, size_t size, size_t n, void* ud) -> size_t {
      auto* tr = static_cast<Transfer*>(ud);
      uint64_t left = tr->body_size() - tr->body_pos;
      size_t want = static_cast<size_t>(std::min<uint64_t>(left, size * n));
      if (want == 0) return 0;
      if (tr->req->body_file.empty()) {
        std::memcpy(buf, tr->mem_body().data() + tr->body_pos, want);
      } else {
        ssize_t got;
        do {
          got = pread(tr->fd, buf, want, static_cast<off_t>(tr->req->body_offset + tr->body_pos));
        } while (got < 0 && errno == EINTR);
        if (got <= 0) {
          tr->local = Status::IOError("read " + tr->req->body_file + ": " +
                                      (got == 0 ? std::string("file shorter than the range being uploaded")
                                                : std::string(std::strerror(errno))));
          return CURL_READFUNC_ABORT;
        }
        want = static_cast<size_t>(got);
      }
      tr->body_pos += want;
      return want;
    };
    curl_easy_setopt(e, CURLOPT_READFUNCTION, rd);
    curl_easy_setopt(e, CURLOPT_READDATA, t.get());
    // curl rewinds the body when it must resend it (e.g. a connection that
    // died between reuse and the first byte).
    curl_seek_callback sk = [](void* ud, curl_off_t off, int origin) -> int {
      auto* tr = static_cast<Transfer*>(ud);
      if (origin != SEEK_SET || off < 0 || static_cast<uint64_t>(off) > tr->body_size())
        return CURL_SEEKFUNC_FAIL;
      tr->body_pos = static_cast<uint64_t>(off);
      return CURL_SEEKFUNC_OK;
    };
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, sk);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, t.get());
  } else if (req.method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  for (const auto& [k, v] : req.headers) t->headers = curl_slist_append(t->headers, (k + ": " + v).c_str());
  // No "Expect: 100-continue": it costs a round trip (or a 1 s stall with
  // servers that ignore it) on every upload, and our bodies are resendable.
  t->headers = curl_slist_append(t->headers, "Expect:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);

  CURLMcode mc = curl_multi_add_handle(static_cast<CURLM*>(multi_), e);
  if (mc != CURLM_OK) {
    curl_easy_reset(e);
    idle_handles_.push_back(e);
    Complete(std::move(t), Status::Internal(std::string("curl_multi_add_handle: ") + curl_multi_strerror(mc)));
    return;
  }
  active_.insert(t.get());
  t->start_ms = t->moved_ms = SteadyMs();
  t.release();  // owned through CURLOPT_PRIVATE until Finish
}

// Fails the transfers libcurl should have ended by now (see
// HttpClientOptions::stall_abandon_ms). Finish removes each from the multi
// handle, here on the pool thread, so curl never touches it again.
void HttpClient::AbandonStuck(int64_t now_ms) {
  std::vector<Transfer*> stuck;
  for (Transfer* t : active_) {
    curl_off_t up = 0, down = 0;
    curl_easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(t->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
    if (up != t->seen_up || down != t->seen_down) {
      t->seen_up = up;
      t->seen_down = down;
      t->moved_ms = now_ms;
    }
    std::string why;
    if (t->req->timeout_ms > 0 && now_ms - t->start_ms > t->req->timeout_ms + options_.abandon_margin_ms)
      why = "still running " + std::to_string(now_ms - t->start_ms) + " ms after it started (timeout " +
            std::to_string(t->req->timeout_ms) + " ms)";
    else if (now_ms - t->moved_ms > stall_abandon_ms_)
      why = "no byte sent or received for " + std::to_string(now_ms - t->moved_ms) + " ms";
    if (why.empty()) continue;
    // Where libcurl left it: never started means it waited in libcurl's
    // queue for a connection, where no timeout of its own applies.
    curl_off_t pretransfer_us = 0;
    curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
    why += pretransfer_us == 0 ? " (never started: waiting for a connection)" : " (after it started)";
    t->local = Status::Unavailable(t->req->method + " " + UrlForErrors(t->req->url) + ": " + why +
                                   "; transfer abandoned (timed out; libcurl did not end it)");
    stuck.push_back(t);
  }
  for (Transfer* t : stuck) Finish(t->easy, CURLE_OPERATION_TIMEDOUT);
}

void HttpClient::Finish(void* easy, int curl_code) {
  CURL* e = static_cast<CURL*>(easy);
  Transfer* raw = nullptr;
  curl_easy_getinfo(e, CURLINFO_PRIVATE, reinterpret_cast<char**>(&raw));
  std::unique_ptr<Transfer> t(raw);
  curl_multi_remove_handle(static_cast<CURLM*>(multi_), e);
  active_.erase(raw);

  const CURLcode rc = static_cast<CURLcode>(curl_code);
  long connects = 0, code = 0, port = 0;
  curl_off_t up = 0, down = 0;
  curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_getinfo(e, CURLINFO_LOCAL_PORT, &port);
  curl_easy_getinfo(e, CURLINFO_SIZE_UPLOAD_T, &up);
  curl_easy_getinfo(e, CURLINFO_SIZE_DOWNLOAD_T, &down);
  requests_.fetch_add(1, std::memory_order_relaxed);
  new_connections_.fetch_add(static_cast<uint64_t>(connects), std::memory_order_relaxed);
  bytes_sent_.fetch_add(static_cast<uint64_t>(up), std::memory_order_relaxed);
  bytes_received_.fetch_add(static_cast<uint64_t>(down), std::memory_order_relaxed);
  t->resp.new_connection = connects > 0;
  t->resp.local_port = port;

  Status s;
  if (!t->local.ok()) {
    s = t->local;
  } else if (rc != CURLE_OK) {
    s = TransportStatus(rc, t->errbuf, *t->req);
  }
  if (!s.ok()) {
    transport_errors_.fetch_add(1, std::memory_order_relaxed);
    t->resp.status = 0;
  } else {
    t->resp.status = code;
  }

  // Reset drops the options but not the connection, which lives in the
  // multi handle's cache; the handle itself is reused for the next request.
  curl_easy_reset(e);
  if (static_cast<int>(idle_handles_.size()) < options_.idle_handles) {
    idle_handles_.push_back(e);
  } else {
    curl_easy_cleanup(e);
  }
  t->easy = nullptr;
  Complete(std::move(t), std::move(s));
}

void HttpClient::Loop() {
  tls_pool_owner = this;
  CURLM* m = static_cast<CURLM*>(multi_);
  // By default no more transfers are handed to libcurl than it may open
  // connections for (to one host): libcurl 7.88 can leave a transfer that
  // waits for a free connection ("pending") stuck forever, without even
  // applying its timeouts (curl issue #13227, fixed in 8.8). Our own queue
  // holds the rest.
  const int max_in_flight = options_.max_in_flight > 0
                                ? options_.max_in_flight
                                : std::max(1, std::min(options_.max_connections, options_.max_connections_per_host));
  std::deque<std::unique_ptr<Transfer>> waiting;  // pulled from queue_, not yet started
  bool stopping = false;
  int64_t watched_ms = SteadyMs();
  while (true) {
    {
      std::lock_guard<std::mutex> l(mu_);
      while (!queue_.empty()) {
        waiting.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      stopping = stopping_;
    }
    if (stopping) break;
    while (!waiting.empty() && static_cast<int>(active_.size()) < max_in_flight) {
      auto t = std::move(waiting.front());
      waiting.pop_front();
      Start(std::move(t));
    }
    int running = 0;
    curl_multi_perform(m, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(m, &left)) {
      if (msg->msg == CURLMSG_DONE) Finish(msg->easy_handle, msg->data.result);
    }
    // The watchdog, a few times a second (curl_multi_poll wakes at least
    // once a second).
    const int64_t now = SteadyMs();
    if (now - watched_ms >= 250) {
      watched_ms = now;
      AbandonStuck(now);
    }
    // Completions may have freed room for waiting transfers: loop at once.
    if (!waiting.empty() && static_cast<int>(active_.size()) < max_in_flight) continue;
    curl_multi_poll(m, nullptr, 0, 1000, nullptr);
  }

  // Shutdown: everything still pending fails with kCancelled, exactly once.
  for (auto& t : waiting) Complete(std::move(t), Status::Cancelled("HTTP client is shutting down"));
  waiting.clear();
  {
    std::deque<std::unique_ptr<Transfer>> rest;
    {
      std::lock_guard<std::mutex> l(mu_);
      rest.swap(queue_);
    }
    for (auto& t : rest) Complete(std::move(t), Status::Cancelled("HTTP client is shutting down"));
  }
  for (Transfer* raw : active_) {
    std::unique_ptr<Transfer> t(raw);
    curl_multi_remove_handle(m, t->easy);
    curl_easy_cleanup(t->easy);
    t->easy = nullptr;
    Complete(std::move(t), Status::Cancelled("HTTP client is shutting down"));
  }
  active_.clear();
  tls_pool_owner = nullptr;
}

}  // namespace replite
