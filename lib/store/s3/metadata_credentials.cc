#include "store/s3/metadata_credentials.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "http/http_client.h"
#include "store/s3/credential_json.h"

namespace replite::s3 {
namespace {

constexpr int64_t kImdsTimeoutMs = 2000;  // off EC2, 169.254.169.254 does not answer: fail fast
constexpr int64_t kEcsTimeoutMs = 5000;
constexpr int kAttempts = 2;

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string TrimEnd(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

// One request with a deadline, retried once on a transport failure or 5xx.
Status Exchange(HttpClient* http, const HttpRequest& req, HttpResponse* r) {
  Status s;
  for (int i = 0; i < kAttempts; i++) {
    *r = HttpResponse();
    s = http->Perform(req, r);
    if (s.ok() && r->status < 500) return s;
  }
  return s;
}

std::string HostOf(const std::string& url) {
  size_t b = url.find("://");
  b = b == std::string::npos ? 0 : b + 3;
  size_t e = url.find('/', b);
  std::string host = url.substr(b, e == std::string::npos ? std::string::npos : e - b);
  if (!host.empty() && host.front() == '[') return host.substr(0, host.find(']') + 1);
  if (size_t c = host.rfind(':'); c != std::string::npos) host = host.substr(0, c);
  return host;
}

class ContainerSource final : public CredentialSource {
 public:
  ContainerSource(std::shared_ptr<HttpClient> http, std::string url) : http_(std::move(http)), url_(std::move(url)) {}

  Status Fetch(TimedCredentials* out) override {
    HttpRequest req;
    req.url = url_;
    req.timeout_ms = kEcsTimeoutMs;
    std::string token;
    const std::string token_file = GetEnv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (!token_file.empty()) {
      std::ifstream in(token_file);
      if (!in)
        return Status::Unauthenticated("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE " + token_file +
                                       ": check the path and the process's permissions");
      std::stringstream ss;
      ss << in.rdbuf();
      token = TrimEnd(ss.str());
    } else {
      token = GetEnv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    }
    if (!token.empty()) req.headers.emplace_back("authorization", token);
    HttpResponse r;
    Status s = Exchange(http_.get(), req, &r);
    if (!s.ok())
      return Status::Unavailable("no answer from the container credentials endpoint " + url_ + ": " + s.message());
    if (r.status != 200)
      return Status(r.status == 401 || r.status == 403 ? Code::kUnauthenticated : Code::kUnavailable,
                    "the container credentials endpoint " + url_ + " answered HTTP " + std::to_string(r.status) +
                        (r.status == 401 || r.status == 403 ? ": check AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]" : ""));
    return ParseCredentialJson(r.body, "the container credentials endpoint " + url_, out);
  }

  std::string Describe() const override { return "container credentials at " + url_; }

 private:
  const std::shared_ptr<HttpClient> http_;
  const std::string url_;
};

class InstanceSource final : public CredentialSource {
 public:
  InstanceSource(std::shared_ptr<HttpClient> http, std::string endpoint)
      : http_(std::move(http)), endpoint_(std::move(endpoint)) {}

  Status Fetch(TimedCredentials* out) override {
    // IMDSv2: a session token first (a PUT, which a misconfigured proxy or
    // an SSRF cannot forge), then every read carries it.
    HttpRequest put;
    put.method = "PUT";
    put.url = endpoint_ + "/latest/api/token";
    put.headers.emplace_back("x-aws-ec2-metadata-token-ttl-seconds", "21600");
    put.timeout_ms = kImdsTimeoutMs;
    HttpResponse r;
    Status s = Exchange(http_.get(), put, &r);
    if (!s.ok())
      return Status::Unavailable("no S3 credentials from EC2 instance metadata (IMDSv2) at " + endpoint_ +
                                 ": not on EC2, or metadata unreachable (" + s.message() +
                                 "); set AWS_EC2_METADATA_DISABLED=true and provide keys otherwise");
    if (r.status != 200)
      return Fail("the IMDSv2 token request", r.status,
                  r.status == 403 ? "instance metadata is disabled on this instance" : "");
    const std::string token = TrimEnd(r.body);

    HttpRequest get;
    get.url = endpoint_ + "/latest/meta-data/iam/security-credentials/";
    get.headers.emplace_back("x-aws-ec2-metadata-token", token);
    get.timeout_ms = kImdsTimeoutMs;
    if (!(s = Exchange(http_.get(), get, &r)).ok())
      return Status::Unavailable("IMDSv2 at " + endpoint_ + ": " + s.message());
    if (r.status != 200)
      return Fail("the instance role lookup", r.status,
                  r.status == 404 ? "the instance has no IAM role: attach an instance profile" : "");
    std::string role = TrimEnd(r.body.substr(0, r.body.find('\n')));
    if (role.empty() || role.find('/') != std::string::npos)
      return Status::Unauthenticated("IMDSv2 at " + endpoint_ +
                                     " names no instance role: attach an instance profile to the instance");
    get.url += role;
    if (!(s = Exchange(http_.get(), get, &r)).ok())
      return Status::Unavailable("IMDSv2 at " + endpoint_ + ": " + s.message());
    if (r.status != 200) return Fail("the credentials of role '" + role + "'", r.status, "");
    return ParseCredentialJson(r.body, "IMDSv2 at " + endpoint_ + " (role '" + role + "')", out);
  }

  std::string Describe() const override { return "EC2 instance metadata (IMDSv2) at " + endpoint_; }

 private:
  Status Fail(const std::string& what, long status, const std::string& hint) const {
    return Status(status >= 500 ? Code::kUnavailable : Code::kUnauthenticated,
                  "IMDSv2 at " + endpoint_ + ": " + what + " answered HTTP " + std::to_string(status) +
                      (hint.empty() ? "" : ": " + hint));
  }

  const std::shared_ptr<HttpClient> http_;
  const std::string endpoint_;
};

}  // namespace

bool ContainerCredentialsConfigured() {
  return !GetEnv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").empty() ||
         !GetEnv("AWS_CONTAINER_CREDENTIALS_FULL_URI").empty();
}

Status NewContainerCredentialSource(std::shared_ptr<HttpClient> http, std::unique_ptr<CredentialSource>* out) {
  std::string url;
  const std::string rel = GetEnv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  if (!rel.empty()) {
    url = "http://169.254.170.2" + std::string(rel.front() == '/' ? "" : "/") + rel;
  } else {
    url = GetEnv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const std::string scheme = Lower(url.substr(0, url.find("://")));
    const std::string host = HostOf(url);
    // As the SDKs do: plain http only to this machine or the ECS / EKS
    // agents, so a token never travels over the network in clear.
    const bool local = host == "localhost" || host.rfind("127.", 0) == 0 || host == "[::1]" ||
                       host == "169.254.170.2" || host == "169.254.170.23" || host == "[fd00:ec2::23]";
    if (url.find("://") == std::string::npos || (scheme != "https" && scheme != "http") ||
        (scheme == "http" && !local))
      return Status::InvalidArgument(
          "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https://..., or http:// to a loopback address or the "
          "ECS/EKS agent (169.254.170.2, 169.254.170.23), not '" + url + "'");
  }
  *out = std::make_unique<ContainerSource>(std::move(http), url);
  return Status::OK();
}

bool InstanceMetadataEnabled() { return Lower(GetEnv("AWS_EC2_METADATA_DISABLED")) != "true"; }

std::unique_ptr<CredentialSource> NewInstanceMetadataSource(std::shared_ptr<HttpClient> http) {
  std::string endpoint = GetEnv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (endpoint.empty())
    endpoint = Lower(GetEnv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE")) == "ipv6" ? "http://[fd00:ec2::254]"
                                                                             : "http://169.254.169.254";
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  return std::make_unique<InstanceSource>(std::move(http), endpoint);
}

}  // namespace replite::s3
