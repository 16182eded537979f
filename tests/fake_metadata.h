// FakeMetadata: tests/fake_aws_metadata.py (a fake IMDSv2 + ECS credentials
// endpoint handing out credentials that expire in seconds) as a child
// process on 127.0.0.1, plus an EnvVars guard that restores the
// environment variables a credential test changes.
//
// Thread-safety: Get may be called from any thread.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace replite::test {

class FakeMetadata {
 public:
  // Starts the server with extra arguments (e.g. {"--lifetime", "3"});
  // nullptr (and *why) when it does not come up within 30 s.
  static std::unique_ptr<FakeMetadata> Start(const std::vector<std::string>& args, std::string* why);
  ~FakeMetadata();  // SIGTERM, then SIGKILL
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // GET `target` ("/stats", "/set?delay_ms=500"); the body.
  std::string Get(const std::string& target);
  // A counter of /stats ("fetches", "token_puts", "unauthorized", "deleted").
  long Stat(const std::string& name);

 private:
  FakeMetadata() = default;
  pid_t pid_ = -1;
  int port_ = 0;
};

// Saves the named variables, unsets them, and restores them at destruction.
class EnvVars {
 public:
  explicit EnvVars(const std::vector<std::string>& names);
  ~EnvVars();

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

// Every variable the AWS credential chain reads.
std::vector<std::string> AwsCredentialVars();

}  // namespace replite::test
