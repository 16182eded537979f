// PUT throughput and client CPU per request: the shared HttpClient pool
// (one CURLM thread, keep-alive connections) versus one fresh curl easy
// handle per request (a new TCP connection each time), same run, same
// server, same signing code.
//
// Server: a moto_server started here on 127.0.0.1 (keep-alive enabled, see
// tests/moto_server.h), or an S3 endpoint from the environment:
//   REPLITE_BENCH_S3_ENDPOINT=http://host:port REPLITE_BENCH_S3_BUCKET=bkt
//   (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
// Knobs: REPLITE_BENCH_PUTS (default 1500 per mode), REPLITE_BENCH_THREADS
// (default 8), REPLITE_BENCH_SIZE (bytes per object, default 4096).
#include <curl/curl.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "http/http_client.h"
#include "store/replica_url.h"
#include "store/s3/s3_store.h"
#include "store/s3/sigv4.h"
// The moto launcher is test code and must not ship in the library; bench
// targets link only the library, so it is compiled in here.
#include "../tests/moto_server.cc"
#include "../tests/server_process.cc"

using namespace replite;

namespace {

int EnvInt(const char* name, int def) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : def;
}

double CpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct BenchResult {
  const char* name;
  int puts = 0;
  int failures = 0;
  double wall_s = 0;
  double cpu_s = 0;
  uint64_t connections = 0;
};

template <typename F>
BenchResult Run(const char* name, int puts, int threads, F put_one) {
  BenchResult r;
  r.name = name;
  r.puts = puts;
  std::atomic<int> next{0}, failures{0};
  const double cpu0 = CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; t++)
    ts.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < puts;)
        if (!put_one(i)) failures++;
    });
  for (auto& t : ts) t.join();
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu_s = CpuSeconds() - cpu0;
  r.failures = failures;
  return r;
}

size_t Discard(char*, size_t s, size_t n, void*) { return s * n; }

struct FreshCtx {
  std::string scheme_host, host, bucket;
  s3::AwsCredentials creds;
  s3::SigV4Signer* signer;
  bool insecure = false;
  std::atomic<uint64_t> connections{0};
};

// One PUT on a brand-new easy handle (new connection, new TLS session if
// https), signed exactly like the store signs.
bool FreshPut(FreshCtx* c, const std::string& key, const std::string& body) {
  s3::SigningRequest sr;
  sr.method = "PUT";
  sr.path = "/" + c->bucket + "/" + key;
  sr.headers = {{"host", c->host}};
  sr.payload_hash = s3::Sha256Hex(body);
  s3::SignedRequest signed_req;
  c->signer->SignHeaders(c->creds, Env::Default()->NowMicros(), sr, {}, &signed_req);
  CURL* e = curl_easy_init();
  if (!e) return false;
  std::string url = c->scheme_host + s3::UriEncode(sr.path, true);
  curl_slist* h = curl_slist_append(nullptr, ("host: " + c->host).c_str());
  for (auto& [k, v] : signed_req.add_headers) h = curl_slist_append(h, (k + ": " + v).c_str());
  h = curl_slist_append(h, "Expect:");
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, Discard);
  if (c->insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  CURLcode rc = curl_easy_perform(e);
  long code = 0, conns = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &conns);
  c->connections += static_cast<uint64_t>(conns);
  curl_easy_cleanup(e);
  curl_slist_free_all(h);
  return rc == CURLE_OK && code == 200;
}

void Print(const BenchResult& r) {
  std::printf("%-28s %6d %5d %9.2f %10.0f %12.0f %12llu\n", r.name, r.puts, r.failures, r.wall_s, r.puts / r.wall_s,
              r.cpu_s * 1e6 / r.puts, static_cast<unsigned long long>(r.connections));
}

// Both modes against one endpoint; prints two rows.
bool Compare(const std::string& label, const std::string& endpoint, const std::string& bucket,
             const s3::AwsCredentials& creds, bool insecure, int puts, int threads, const std::string& body) {
  HttpClientOptions o;
  o.max_connections = 8;
  o.max_connections_per_host = 8;
  std::shared_ptr<HttpClient> http;
  if (!HttpClient::Open(o, &http).ok()) return false;
  ReplicaUrl url;
  std::string u = "s3://" + bucket + "/bench?endpoint=" + endpoint + "&region=us-east-1&force-path-style=true";
  if (insecure) u += "&insecure-skip-verify=true";
  if (!ParseReplicaUrl(u, &url).ok()) return false;
  std::shared_ptr<ObjectStore> store;
  StoreConfig cfg;
  cfg.max_retries = 0;
  if (!OpenS3StoreWithCredentials(url, creds, http, nullptr, cfg, &store).ok()) return false;
  for (int i = 0; i < 20; i++) (void)store->Put("bench/warm/" + std::to_string(i), body);  // warm-up

  const uint64_t conn0 = http->Stats().new_connections;
  std::string pool_name = label + " pool (8 conns)";
  BenchResult pool = Run(pool_name.c_str(), puts, threads,
                         [&](int i) { return store->Put("bench/pool/" + std::to_string(i), body).ok(); });
  pool.connections = http->Stats().new_connections - conn0;

  s3::SigV4Signer signer("us-east-1", "s3");
  FreshCtx ctx;
  ctx.scheme_host = endpoint;
  ctx.host = endpoint.substr(endpoint.find("://") + 3);
  ctx.bucket = bucket;
  ctx.creds = creds;
  ctx.signer = &signer;
  ctx.insecure = insecure;
  std::string fresh_name = label + " fresh handle/PUT";
  BenchResult fresh = Run(fresh_name.c_str(), puts, threads,
                          [&](int i) { return FreshPut(&ctx, "bench/fresh/" + std::to_string(i), body); });
  fresh.connections = ctx.connections;
  Print(pool);
  Print(fresh);
  std::fflush(stdout);
  return pool.failures + fresh.failures == 0;
}

}  // namespace

int main() {
  const int puts = EnvInt("REPLITE_BENCH_PUTS", 800);
  const int threads = EnvInt("REPLITE_BENCH_THREADS", 8);
  const int size = EnvInt("REPLITE_BENCH_SIZE", 4096);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const std::string body(static_cast<size_t>(size), 'b');
  std::string endpoint = std::getenv("REPLITE_BENCH_S3_ENDPOINT") ? std::getenv("REPLITE_BENCH_S3_ENDPOINT") : "";
  std::string bucket = std::getenv("REPLITE_BENCH_S3_BUCKET") ? std::getenv("REPLITE_BENCH_S3_BUCKET") : "bench";

  std::printf("S3 PUT benchmark: %d PUTs of %d bytes per mode, %d client threads\n", puts, size, threads);
  std::printf("%-28s %6s %5s %9s %10s %12s %12s\n", "mode", "puts", "fail", "wall s", "PUT/s", "CPU us/PUT",
              "new conns");
  bool ok = true;
  if (!endpoint.empty()) {
    const char* id = std::getenv("AWS_ACCESS_KEY_ID");
    const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
    if (!id || !secret) {
      std::fprintf(stderr, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for %s\n", endpoint.c_str());
      return 1;
    }
    s3::AwsCredentials creds{id, secret, std::getenv("AWS_SESSION_TOKEN") ? std::getenv("AWS_SESSION_TOKEN") : ""};
    ok = Compare(endpoint.rfind("https", 0) == 0 ? "https" : "http", endpoint, bucket, creds, false, puts, threads,
                 body);
  } else {
    // moto over plain HTTP, then over TLS (self-signed, verification off),
    // where a fresh connection also pays a TLS handshake.
    const s3::AwsCredentials creds{"AKIDBENCH", "bench-secret", ""};
    for (bool tls : {false, true}) {
      std::string why;
      auto moto = replite::testing::MotoServer::Start(&why, tls);
      if (!moto || !moto->CreateBucket(bucket).ok()) {
        std::fprintf(stderr, "cannot start moto_server%s: %s\n", tls ? " with TLS" : "", why.c_str());
        return 1;
      }
      ok &= Compare(tls ? "https" : "http", moto->endpoint(), bucket, creds, tls, puts, threads, body);
    }
  }
  std::printf("(moto on 127.0.0.1 is the bottleneck for PUT/s; CPU is this client process only)\n");
  return ok ? 0 : 1;
}
