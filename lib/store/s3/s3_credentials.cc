#include "store/s3/s3_credentials.h"

#include <cstdlib>
#include <fstream>

namespace replite::s3 {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string CredentialsFile() {
  std::string f = Env("AWS_SHARED_CREDENTIALS_FILE");
  if (!f.empty()) return f;
  std::string home = Env("HOME");
  return (home.empty() ? std::string(".") : home) + "/.aws/credentials";
}

}  // namespace

Status LoadProfile(const std::string& path, const std::string& profile, AwsCredentials* out) {
  std::ifstream in(path);
  if (!in) return Status::Unauthenticated("cannot read the AWS credentials file " + path);
  *out = AwsCredentials();
  bool found = false, in_section = false;
  std::string line;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      std::string name = Trim(line.substr(1, line.size() - 2));
      if (name.rfind("profile ", 0) == 0) name = Trim(name.substr(8));
      in_section = name == profile;
      found |= in_section;
      continue;
    }
    if (!in_section) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = Trim(line.substr(0, eq)), v = Trim(line.substr(eq + 1));
    if (k == "aws_access_key_id") out->access_key_id = v;
    else if (k == "aws_secret_access_key") out->secret_access_key = v;
    else if (k == "aws_session_token" || k == "aws_security_token") out->session_token = v;
  }
  if (!found) return Status::Unauthenticated("no profile '" + profile + "' in " + path);
  if (out->access_key_id.empty() || out->secret_access_key.empty())
    return Status::Unauthenticated("profile '" + profile + "' in " + path +
                                   " lacks aws_access_key_id or aws_secret_access_key");
  return Status::OK();
}

Status LoadCredentials(const std::string& profile, AwsCredentials* out, std::string* source) {
  const std::string file = CredentialsFile();
  if (!profile.empty()) {
    *source = "profile '" + profile + "' in " + file;
    return LoadProfile(file, profile, out);
  }
  std::string id = Env("AWS_ACCESS_KEY_ID"), secret = Env("AWS_SECRET_ACCESS_KEY");
  if (!id.empty() || !secret.empty()) {
    if (id.empty() || secret.empty())
      return Status::Unauthenticated("only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set: set both");
    *out = AwsCredentials{id, secret, Env("AWS_SESSION_TOKEN")};
    *source = "environment";
    return Status::OK();
  }
  std::string p = Env("AWS_PROFILE");
  if (p.empty()) p = "default";
  *source = "profile '" + p + "' in " + file;
  Status s = LoadProfile(file, p, out);
  if (!s.ok())
    return Status::Unauthenticated("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                                   "AWS_PROFILE with a profile in " + file + " (" + s.message() + ")");
  return s;
}

}  // namespace replite::s3
