#include "metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

MetricsServer::~MetricsServer() { Stop(); }

std::string MetricsServer::Start(const std::string& addr, std::function<std::string()> render) {
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return "-metrics-addr wants HOST:PORT, e.g. 127.0.0.1:9090";
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::atoi(addr.c_str() + colon + 1)));
  std::string host = addr.substr(0, colon);
  if (host.empty()) host = "127.0.0.1";
  if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) return "-metrics-addr: bad IPv4 address '" + host + "'";
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd_, 16) != 0) {
    std::string e = std::string("-metrics-addr ") + addr + ": " + std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    return e;
  }
  render_ = std::move(render);
  thread_ = std::thread([this] { Loop(); });
  return "";
}

void MetricsServer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void MetricsServer::Loop() {
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    timeval tv{2, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[2048];
    ssize_t n = ::recv(c, buf, sizeof buf - 1, 0);
    std::string req = n > 0 ? std::string(buf, size_t(n)) : "";
    std::string body, status = "200 OK", type = "text/plain; version=0.0.4; charset=utf-8";
    if (req.rfind("GET /metrics", 0) == 0) {
      body = render_();
    } else {
      status = "404 Not Found";
      body = "try GET /metrics\n";
      type = "text/plain";
    }
    std::string resp = "HTTP/1.1 " + status + "\r\nContent-Type: " + type + "\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    size_t off = 0;
    while (off < resp.size()) {
      ssize_t w = ::send(c, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += size_t(w);
    }
    ::close(c);
  }
}
