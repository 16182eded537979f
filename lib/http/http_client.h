// HttpClient: the one HTTP connection pool of a Replicator. One thread owns
// one CURLM (libcurl does not let concurrent threads share connections), so
// every store and every database reuse the same keep-alive connections,
// bounded in number whatever the number of databases.
//
// Requests are submitted from any thread; they are handed to the pool thread
// through a queue and curl_multi_wakeup. Completion comes as a callback (run
// on the pool thread: it must be quick and must not call Perform) or through
// the blocking Perform().
//
// HTTP status codes are not errors here: a completed exchange is OK with the
// status in HttpResponse::status, and the caller (e.g. the S3 store) maps it.
// Transport failures map to Status codes so that retry policy follows from
// the code: connection refused/reset, DNS, timeouts, a transfer abandoned by
// the pool's watchdog (see stall_abandon_ms) → kUnavailable; TLS
// verification failure → kFailedPrecondition; a local file that cannot be
// read → kIOError; shutdown → kCancelled.
//
// Thread-safety: every public method may be called from any thread, except
// Perform() from inside a completion callback (it would wait on itself; it
// returns kInternal instead).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "replite/status.h"

namespace replite {

struct HttpClientOptions {
  int max_connections = 32;           // Default: 32 TCP connections in total
  int max_connections_per_host = 16;  // Default: 16 per host
  int connect_timeout_ms = 10000;     // Default: 10 s
  int low_speed_limit_bytes = 1024;   // Default: a transfer slower than 1 KiB/s ...
  int low_speed_time_s = 30;          // Default: ... for 30 s is aborted (kUnavailable)
  std::string ca_file;                // Default: "" = the system CA bundle
  bool verify_tls = true;             // Default: on. Off only for test endpoints.
  // Transfers handed to curl at once; the rest wait in our queue so easy
  // handles (and their buffers) stay bounded whatever the backlog.
  // Default: 0 = min(max_connections, max_connections_per_host): libcurl
  // 7.88 can strand transfers waiting for a connection (see Loop()).
  int max_in_flight = 0;
  int idle_handles = 16;  // Default: 16 easy handles kept for reuse
  // A defence against libcurl never ending a transfer (7.88 can strand one,
  // curl #13227): the pool thread abandons a transfer that moved no byte for
  // stall_abandon_ms, or that still runs abandon_margin_ms after its
  // timeout_ms. It is removed from libcurl and fails with kUnavailable
  // naming the request. libcurl's own limits (connect timeout, low-speed
  // limit, timeout_ms) end every healthy transfer before that.
  // Default: 0 = connect_timeout_ms + low_speed_time_s + abandon_margin_ms.
  int64_t stall_abandon_ms = 0;
  int64_t abandon_margin_ms = 5000;  // Default: 5 s
};

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string url;             // fully encoded
  std::vector<std::pair<std::string, std::string>> headers;
  // The body is either `body` (in memory) or, when body_file is set, the
  // byte range [body_offset, body_offset + body_length) of that file, read
  // in small pieces while sending: a snapshot is never held whole in memory.
  std::string body;
  // When set, used instead of `body` without copying it; the string must
  // stay alive and unchanged until the exchange completes (Perform).
  const std::string* body_ptr = nullptr;
  std::string body_file;
  uint64_t body_offset = 0;
  uint64_t body_length = 0;
  int64_t timeout_ms = 0;  // whole-exchange deadline; Default: 0 = none (low-speed limit applies)
  // Per-store TLS settings (a replica URL's ca-file / insecure-skip-verify);
  // curl reuses a connection only for requests with the same settings.
  std::string ca_file;      // Default: "" = HttpClientOptions::ca_file
  bool verify_tls = true;   // Default: on; off only if this and the client options allow
};

struct HttpResponse {
  long status = 0;  // HTTP status (0 if the exchange failed)
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, last response only
  std::string body;
  // Diagnostics, used by tests and the benchmark to prove connection reuse.
  bool new_connection = false;  // this exchange opened a TCP connection
  long local_port = 0;

  // The value of a header (name in lower case), "" if absent.
  std::string Header(std::string_view lower_name) const;
};

struct HttpStats {
  uint64_t requests = 0;         // exchanges finished (success or not)
  uint64_t new_connections = 0;  // TCP connections opened (CURLINFO_NUM_CONNECTS)
  uint64_t transport_errors = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  int64_t in_flight = 0;  // submitted, not yet completed
};

class HttpClient {
 public:
  // Called exactly once per submitted request. On the pool thread, except
  // when Submit fails at once (shutdown), then on the submitting thread.
  using Callback = std::function<void(Status transport, HttpResponse&& response)>;

  // Starts the pool thread. Fails only if curl cannot be initialized.
  static Status Open(const HttpClientOptions& options, std::shared_ptr<HttpClient>* out);
  // Fails every pending request with kCancelled and joins the pool thread.
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  void Submit(HttpRequest request, Callback done);
  // Blocks until the exchange ends, at the latest when the watchdog
  // abandons it (stall_abandon_ms). `request` is used in place (no copy of
  // the body) and must stay unchanged until Perform returns.
  Status Perform(const HttpRequest& request, HttpResponse* response);

  HttpStats Stats() const;
  const HttpClientOptions& options() const { return options_; }

 private:
  struct Transfer;
  explicit HttpClient(const HttpClientOptions& options);
  Status Init();
  void Enqueue(std::unique_ptr<Transfer> t);
  void Loop();
  void Start(std::unique_ptr<Transfer> t);
  void Finish(void* easy, int curl_code);
  void AbandonStuck(int64_t now_ms);
  void Complete(std::unique_ptr<Transfer> t, Status s);

  const HttpClientOptions options_;
  void* multi_ = nullptr;  // CURLM*, touched only by the pool thread after Init
  std::thread thread_;

  std::mutex mu_;  // guards queue_ and stopping_
  std::deque<std::unique_ptr<Transfer>> queue_;
  bool stopping_ = false;

  // Pool-thread state (no lock needed).
  std::unordered_set<Transfer*> active_;  // handed to curl, not finished
  std::vector<void*> idle_handles_;       // CURL* kept for reuse
  const int64_t stall_abandon_ms_;        // the watchdog's bound (options resolved)

  std::atomic<uint64_t> requests_{0}, new_connections_{0}, transport_errors_{0};
  std::atomic<uint64_t> bytes_sent_{0}, bytes_received_{0};
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace replite
