// A minimal HTTP endpoint for Prometheus scrapes: GET /metrics answers with
// the text the callback returns; anything else is 404. One thread, one
// connection at a time (a scrape every few seconds is the whole load).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

class MetricsServer {
 public:
  ~MetricsServer();
  // addr: "127.0.0.1:9090". Returns an error message, or "" on success.
  std::string Start(const std::string& addr, std::function<std::string()> render);
  void Stop();

 private:
  void Loop();
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::function<std::string()> render_;
  std::thread thread_;
};
