#include "store/s3/s3_credentials.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include "store/s3/metadata_credentials.h"
#include "store/s3/process_credentials.h"
#include "store/s3/sts_credentials.h"

namespace replite::s3 {
namespace {

using Section = std::map<std::string, std::string>;
using Profiles = std::map<std::string, Section>;

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

std::string Home() {
  std::string home = Env("HOME");
  return home.empty() ? std::string(".") : home;
}

std::string CredentialsFile() {
  std::string f = Env("AWS_SHARED_CREDENTIALS_FILE");
  return f.empty() ? Home() + "/.aws/credentials" : f;
}

std::string ConfigFile() {
  std::string f = Env("AWS_CONFIG_FILE");
  return f.empty() ? Home() + "/.aws/config" : f;
}

// Reads an INI file into `out` (sections by profile name). In the config
// file a profile is [profile NAME] (or [default]); in the credentials file
// it is [NAME]. Other config sections (sso-session, services) are skipped.
// A missing file reads as empty.
void ReadIni(const std::string& path, bool config, Profiles* out) {
  std::ifstream in(path);
  if (!in) return;
  Section* cur = nullptr;
  std::string line;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      std::string name = Trim(line.substr(1, line.size() - 2));
      if (name.rfind("profile ", 0) == 0) {
        name = Trim(name.substr(8));
      } else if (config && name != "default") {
        cur = nullptr;
        continue;
      }
      cur = &(*out)[name];
      continue;
    }
    if (!cur || line[0] == ' ' || line[0] == '\t') continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    (*cur)[Trim(line.substr(0, eq))] = Trim(line.substr(eq + 1));
  }
}

class Chain {
 public:
  explicit Chain(const ChainOptions& o) : o_(o) {
    ReadIni(ConfigFile(), true, &profiles_);
    Profiles creds;
    ReadIni(CredentialsFile(), false, &creds);
    for (auto& [name, sec] : creds)
      for (auto& [k, v] : sec) profiles_[name][k] = v;  // the credentials file wins
  }

  bool Has(const std::string& profile) const { return profiles_.count(profile) > 0; }

  std::string Where(const std::string& profile) const {
    return "profile '" + profile + "' (in " + ConfigFile() + " / " + CredentialsFile() + ")";
  }

  // The source a profile describes.
  Status FromProfile(const std::string& name, std::set<std::string>* seen, std::unique_ptr<CredentialSource>* out) {
    auto it = profiles_.find(name);
    if (it == profiles_.end())
      return Status::Unauthenticated("no " + Where(name) + ": create it, or fix profile= / AWS_PROFILE");
    const Section& p = it->second;
    auto get = [&](const char* k) {
      auto f = p.find(k);
      return f == p.end() ? std::string() : f->second;
    };
    const std::string where = Where(name);
    const std::string role_arn = get("role_arn");
    const bool in_cycle = !seen->insert(name).second;
    if (!role_arn.empty() && !in_cycle) {
      StsRole role;
      role.region = Region(get("region"));
      role.role_arn = role_arn;
      role.session_name = get("role_session_name");
      role.external_id = get("external_id");
      role.duration_s = std::atoi(get("duration_seconds").c_str());
      if (!get("web_identity_token_file").empty()) {
        *out = NewWebIdentitySource(o_.http, o_.env, role, get("web_identity_token_file"));
        return Status::OK();
      }
      std::unique_ptr<CredentialSource> src;
      Status s;
      const std::string source_profile = get("source_profile"), credential_source = get("credential_source");
      if (!source_profile.empty()) {
        if (source_profile == name) {
          s = Static(p, where, &src);  // the AWS CLI's "role_arn with its own keys"
        } else if (seen->size() > 8) {
          s = Status::InvalidArgument(where + ": source_profile chain too long");
        } else {
          s = FromProfile(source_profile, seen, &src);
        }
      } else if (credential_source == "Environment") {
        s = FromEnvKeys(&src);
        if (s.ok() && !src) s = Status::Unauthenticated(where + ": credential_source Environment, but "
                                                         "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set");
      } else if (credential_source == "Ec2InstanceMetadata") {
        src = NewInstanceMetadataSource(o_.http);
      } else if (credential_source == "EcsContainer") {
        s = NewContainerCredentialSource(o_.http, &src);
      } else {
        s = Status::InvalidArgument(where + " has role_arn but no source_profile, credential_source "
                                    "(Environment, Ec2InstanceMetadata, EcsContainer) or web_identity_token_file");
      }
      if (!s.ok()) return s;
      *out = NewAssumeRoleSource(o_.http, o_.env, role, std::make_shared<CredentialProvider>(std::move(src), o_.env));
      return Status::OK();
    }
    if (!get("aws_access_key_id").empty() || !get("aws_secret_access_key").empty()) return Static(p, where, out);
    if (!get("credential_process").empty()) {
      *out = NewProcessCredentialSource(get("credential_process"), where);
      return Status::OK();
    }
    return Status::Unauthenticated(where + " holds no credentials: add aws_access_key_id and "
                                   "aws_secret_access_key, role_arn with source_profile, or credential_process");
  }

  // A profile with no credential settings at all (e.g. only a region).
  bool Empty(const std::string& name) const {
    auto it = profiles_.find(name);
    if (it == profiles_.end()) return true;
    for (const char* k : {"role_arn", "aws_access_key_id", "aws_secret_access_key", "credential_process"})
      if (it->second.count(k)) return false;
    return true;
  }

  // Environment keys; *out stays null when none are set.
  static Status FromEnvKeys(std::unique_ptr<CredentialSource>* out) {
    std::string id = Env("AWS_ACCESS_KEY_ID"), secret = Env("AWS_SECRET_ACCESS_KEY");
    if (id.empty() && secret.empty()) return Status::OK();
    if (id.empty() || secret.empty())
      return Status::Unauthenticated("only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set: set both");
    *out = StaticCredentialSource({id, secret, Env("AWS_SESSION_TOKEN")}, "environment (AWS_ACCESS_KEY_ID)");
    return Status::OK();
  }

  std::string Region(const std::string& profile_region) const {
    if (!o_.region.empty()) return o_.region;
    std::string r = Env("AWS_REGION");
    if (r.empty()) r = Env("AWS_DEFAULT_REGION");
    if (r.empty()) r = profile_region;
    return r.empty() ? "us-east-1" : r;
  }

 private:
  static Status Static(const Section& p, const std::string& where, std::unique_ptr<CredentialSource>* out) {
    auto get = [&](const char* k) {
      auto f = p.find(k);
      return f == p.end() ? std::string() : f->second;
    };
    AwsCredentials c{get("aws_access_key_id"), get("aws_secret_access_key"), get("aws_session_token")};
    if (c.session_token.empty()) c.session_token = get("aws_security_token");
    if (c.access_key_id.empty() || c.secret_access_key.empty())
      return Status::Unauthenticated(where + " lacks aws_access_key_id or aws_secret_access_key");
    *out = StaticCredentialSource(std::move(c), where);
    return Status::OK();
  }

  const ChainOptions& o_;
  Profiles profiles_;
};

}  // namespace

Status LoadProfile(const std::string& path, const std::string& profile, AwsCredentials* out) {
  std::ifstream in(path);
  if (!in) return Status::Unauthenticated("cannot read the AWS credentials file " + path);
  Profiles ps;
  ReadIni(path, false, &ps);
  *out = AwsCredentials();
  auto it = ps.find(profile);
  if (it == ps.end()) return Status::Unauthenticated("no profile '" + profile + "' in " + path);
  Section& p = it->second;
  out->access_key_id = p["aws_access_key_id"];
  out->secret_access_key = p["aws_secret_access_key"];
  out->session_token = p.count("aws_session_token") ? p["aws_session_token"] : p["aws_security_token"];
  if (out->access_key_id.empty() || out->secret_access_key.empty())
    return Status::Unauthenticated("profile '" + profile + "' in " + path +
                                   " lacks aws_access_key_id or aws_secret_access_key");
  return Status::OK();
}

Status ResolveCredentialSource(const std::string& profile, const ChainOptions& options,
                               std::unique_ptr<CredentialSource>* out) {
  out->reset();
  Chain chain(options);
  std::set<std::string> seen;
  // 0. An explicit profile: that one only.
  if (!profile.empty()) return chain.FromProfile(profile, &seen, out);
  // 1. Environment keys.
  Status s = Chain::FromEnvKeys(out);
  if (!s.ok() || *out) return s;
  // 2. The shared files.
  const std::string named = Env("AWS_PROFILE");
  if (!named.empty()) return chain.FromProfile(named, &seen, out);
  if (!chain.Empty("default")) return chain.FromProfile("default", &seen, out);
  // 3. Web identity from the environment.
  const std::string token_file = Env("AWS_WEB_IDENTITY_TOKEN_FILE"), role_arn = Env("AWS_ROLE_ARN");
  if (!token_file.empty() || !role_arn.empty()) {
    if (token_file.empty() || role_arn.empty())
      return Status::Unauthenticated("only one of AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN is set: set both");
    StsRole role;
    role.region = chain.Region("");
    role.role_arn = role_arn;
    role.session_name = Env("AWS_ROLE_SESSION_NAME");
    *out = NewWebIdentitySource(options.http, options.env, role, token_file);
    return Status::OK();
  }
  // 4. Container credentials.
  if (ContainerCredentialsConfigured()) return NewContainerCredentialSource(options.http, out);
  // 5. Instance metadata.
  if (InstanceMetadataEnabled()) {
    *out = NewInstanceMetadataSource(options.http);
    return Status::OK();
  }
  return Status::Unauthenticated(
      "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in " +
      CredentialsFile() + " or " + ConfigFile() +
      ", or run where a role is provided (EKS web identity, ECS, EC2 instance metadata: "
      "AWS_EC2_METADATA_DISABLED is set)");
}

}  // namespace replite::s3
