#include "store/s3/sts_credentials.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "http/http_client.h"
#include "store/s3/credential_json.h"
#include "store/s3/s3_xml.h"
#include "store/s3/sigv4.h"

namespace replite::s3 {
namespace {

constexpr int64_t kStsTimeoutMs = 30000;
constexpr int kAttempts = 3;

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

const XmlNode* Find(const XmlNode& n, std::string_view name) {
  if (n.name == name) return &n;
  for (const auto& c : n.children)
    if (const XmlNode* f = Find(c, name)) return f;
  return nullptr;
}

class StsSource : public CredentialSource {
 public:
  StsSource(std::shared_ptr<HttpClient> http, Env* env, StsRole role, const char* action)
      : http_(std::move(http)), env_(env ? env : Env::Default()), role_(std::move(role)), action_(action),
        endpoint_(StsEndpoint(role_.region)) {}

  std::string Describe() const override { return "STS " + action_ + " for role " + role_.role_arn; }

 protected:
  // The form fields common to both actions.
  KeyValues Form() const {
    KeyValues f = {{"Action", action_}, {"Version", "2011-06-15"}, {"RoleArn", role_.role_arn}};
    f.emplace_back("RoleSessionName", role_.session_name.empty()
                                          ? "replite-" + std::to_string(env_->NowMicros() / 1000000)
                                          : role_.session_name);
    if (role_.duration_s > 0) f.emplace_back("DurationSeconds", std::to_string(role_.duration_s));
    return f;
  }

  // POSTs the form (signed with `creds` unless null) and reads the
  // <Credentials> of the answer.
  Status Call(const KeyValues& form, const AwsCredentials* creds, TimedCredentials* out) {
    const std::string body = CanonicalQuery(form);  // the same encoding as a form body
    HttpRequest req;
    req.method = "POST";
    req.url = endpoint_ + "/";
    req.body = body;
    req.timeout_ms = kStsTimeoutMs;
    req.headers = {{"content-type", "application/x-www-form-urlencoded; charset=utf-8"}};
    HttpResponse r;
    Status s;
    for (int i = 0; i < kAttempts; i++) {
      HttpRequest attempt = req;
      if (creds) {
        SigningRequest sr;
        sr.method = "POST";
        sr.path = "/";
        sr.headers = attempt.headers;
        sr.headers.emplace_back("host", HostHeader());
        sr.payload_hash = Sha256Hex(body);
        SignOptions opt;
        opt.sign_content_sha256 = false;
        SignedRequest signed_req;
        SigV4Signer(role_.region, "sts").SignHeaders(*creds, env_->NowMicros(), sr, opt, &signed_req);
        attempt.headers = sr.headers;
        for (auto& h : signed_req.add_headers) attempt.headers.push_back(std::move(h));
      }
      r = HttpResponse();
      s = http_->Perform(attempt, &r);
      if (s.ok() && r.status < 500 && r.status != 429) break;
    }
    const std::string what = Describe() + " at " + endpoint_;
    if (!s.ok()) return Status::Unavailable(what + ": " + s.message());
    XmlNode root;
    const bool xml = ParseXml(r.body, &root).ok();
    if (r.status != 200) {
      const XmlNode* err = xml ? Find(root, "Error") : nullptr;
      const std::string code = err ? err->ChildText("Code") : "";
      const std::string hint =
          code == "ExpiredTokenException" || code == "InvalidIdentityToken"
              ? "the web identity token was refused: check AWS_WEB_IDENTITY_TOKEN_FILE and the role's trust policy"
              : code == "AccessDenied" ? "the caller may not assume this role: check the role's trust policy"
                                       : "check the role ARN and the source credentials";
      return Status(r.status >= 500 || r.status == 429 ? Code::kUnavailable : Code::kUnauthenticated,
                    what + " failed: HTTP " + std::to_string(r.status) + (code.empty() ? "" : " " + code) + "; " +
                        hint);
    }
    const XmlNode* c = xml ? Find(root, "Credentials") : nullptr;
    if (!c) return Status::Unauthenticated(what + " answered without <Credentials>");
    *out = TimedCredentials();
    out->creds = {c->ChildText("AccessKeyId"), c->ChildText("SecretAccessKey"), c->ChildText("SessionToken")};
    out->expires_ms = ParseExpirationMs(c->ChildText("Expiration"));
    if (out->creds.access_key_id.empty() || out->creds.secret_access_key.empty() || out->expires_ms == 0)
      return Status::Unauthenticated(what + " answered incomplete <Credentials>");
    return Status::OK();
  }

  std::string HostHeader() const {
    const size_t b = endpoint_.find("://");
    return endpoint_.substr(b == std::string::npos ? 0 : b + 3);
  }

  const std::shared_ptr<HttpClient> http_;
  Env* const env_;
  const StsRole role_;
  const std::string action_;
  const std::string endpoint_;
};

class AssumeRoleSource final : public StsSource {
 public:
  AssumeRoleSource(std::shared_ptr<HttpClient> http, Env* env, StsRole role,
                   std::shared_ptr<CredentialProvider> source)
      : StsSource(std::move(http), env, std::move(role), "AssumeRole"), source_(std::move(source)) {}

  Status Fetch(TimedCredentials* out) override {
    AwsCredentials creds;
    Status s = source_->Get(&creds);
    if (!s.ok()) return s.Annotate(Describe() + ": its source credentials: ");
    KeyValues form = Form();
    if (!role_.external_id.empty()) form.emplace_back("ExternalId", role_.external_id);
    return Call(form, &creds, out);
  }

 private:
  const std::shared_ptr<CredentialProvider> source_;
};

class WebIdentitySource final : public StsSource {
 public:
  WebIdentitySource(std::shared_ptr<HttpClient> http, Env* env, StsRole role, std::string token_file)
      : StsSource(std::move(http), env, std::move(role), "AssumeRoleWithWebIdentity"),
        token_file_(std::move(token_file)) {}

  Status Fetch(TimedCredentials* out) override {
    std::ifstream in(token_file_);
    std::stringstream ss;
    if (in) ss << in.rdbuf();
    std::string token = ss.str();
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (!in || token.empty())
      return Status::Unauthenticated("cannot read a web identity token from " + token_file_ +
                                     " (AWS_WEB_IDENTITY_TOKEN_FILE or the profile's web_identity_token_file)");
    KeyValues form = Form();
    form.emplace_back("WebIdentityToken", token);
    return Call(form, nullptr, out);
  }

 private:
  const std::string token_file_;
};

}  // namespace

std::string StsEndpoint(const std::string& region) {
  std::string e = GetEnv("AWS_ENDPOINT_URL_STS");
  if (e.empty()) e = GetEnv("AWS_ENDPOINT_URL");
  if (e.empty()) e = "https://sts." + (region.empty() ? std::string("us-east-1") : region) + ".amazonaws.com";
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

std::unique_ptr<CredentialSource> NewAssumeRoleSource(std::shared_ptr<HttpClient> http, Env* env, StsRole role,
                                                      std::shared_ptr<CredentialProvider> source) {
  return std::make_unique<AssumeRoleSource>(std::move(http), env, std::move(role), std::move(source));
}

std::unique_ptr<CredentialSource> NewWebIdentitySource(std::shared_ptr<HttpClient> http, Env* env, StsRole role,
                                                       std::string token_file) {
  return std::make_unique<WebIdentitySource>(std::move(http), env, std::move(role), std::move(token_file));
}

}  // namespace replite::s3
