// [credentials] The AWS credential chain and its refresh: the provider's
// timing rules with a scripted source and a manual clock; which source the
// chain picks; the IMDSv2 and ECS endpoints (tests/fake_aws_metadata.py,
// credentials expiring in seconds); STS AssumeRole and
// AssumeRoleWithWebIdentity on moto; and a replication that outlives
// several expiries with moto checking every signature, keys deleted from
// moto once expired.
//
// Servers are started by the tests on 127.0.0.1; a test FAILs when one
// cannot start (moto: unless REPLITE_ALLOW_S3_SKIP=1).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "fake_metadata.h"
#include "http/http_client.h"
#include "moto_server.h"
#include "replite/replite.h"
#include "store/replica_url.h"
#include "store/s3/credential_provider.h"
#include "store/s3/s3_credentials.h"
#include "store/s3/s3_store.h"
#include "store/store_registry.h"
#include "test_util.h"

using namespace replite;
using Clock = std::chrono::steady_clock;

namespace {

// Credentials numbered 1, 2, ...: "AKIDn", "secret-n", "token-n", each
// valid `lifetime_ms` from the (manual) clock at fetch time. Fetch blocks
// while the gate is closed; `fail` makes it return an error.
class ScriptedSource final : public s3::CredentialSource {
 public:
  ScriptedSource(Env* env, int64_t lifetime_ms) : env_(env), lifetime_ms_(lifetime_ms) {}
  Status Fetch(s3::TimedCredentials* out) override {
    std::unique_lock<std::mutex> l(mu_);
    const int n = ++calls_;
    cv_.notify_all();
    cv_.wait(l, [&] { return open_; });
    if (fail_) return Status::Unavailable("scripted source is down");
    out->creds = {"AKID" + std::to_string(n), "secret-" + std::to_string(n), "token-" + std::to_string(n)};
    out->expires_ms = env_->NowMicros() / 1000 + lifetime_ms_;
    return Status::OK();
  }
  std::string Describe() const override { return "the scripted source"; }

  void SetGate(bool open) {
    std::lock_guard<std::mutex> l(mu_);
    open_ = open;
    cv_.notify_all();
  }
  void SetFail(bool fail) {
    std::lock_guard<std::mutex> l(mu_);
    fail_ = fail;
  }
  int calls() {
    std::lock_guard<std::mutex> l(mu_);
    return calls_;
  }
  // Waits (bounded) until Fetch has been entered `n` times in all.
  bool WaitCalls(int n) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(10), [&] { return calls_ >= n; });
  }

 private:
  Env* env_;
  const int64_t lifetime_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true, fail_ = false;
  int calls_ = 0;
};

std::string GetKeyId(s3::CredentialProvider& p) {
  s3::AwsCredentials c;
  Status s = p.Get(&c);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return c.access_key_id;
}

std::string WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::shared_ptr<HttpClient> NewHttp() {
  std::shared_ptr<HttpClient> c;
  REQUIRE(HttpClient::Open(HttpClientOptions(), &c).ok());
  return c;
}

std::unique_ptr<test::FakeMetadata> StartFake(const std::vector<std::string>& args) {
  std::string why;
  auto f = test::FakeMetadata::Start(args, &why);
  if (!f) FAIL("fake_aws_metadata.py cannot start: " << why);
  return f;
}

// Source chosen by the chain for `profile` with the current environment.
Status Resolve(const std::string& profile, std::unique_ptr<s3::CredentialSource>* out,
               std::shared_ptr<HttpClient> http = nullptr) {
  s3::ChainOptions o;
  o.http = std::move(http);
  return s3::ResolveCredentialSource(profile, o, out);
}

// Runs a python3 script; REQUIREs success; returns its stdout.
std::string Python(const std::string& script) {
  test::TempDir dir;
  WriteFile(dir / "s.py", script);
  std::string out;
  int rc = test::Shell("python3 " + dir / "s.py", &out);
  INFO(out);
  REQUIRE(rc == 0);
  return out;
}

// Creates, in moto's IAM, an admin user (its keys) and a role allowed s3:*
// that anyone may assume, also with a web identity. Names are unique per
// call: moto keeps IAM across tests of one process.
struct MotoIam {
  std::string admin_id, admin_secret, role_arn;
};
MotoIam SetUpIam(testing::MotoServer* m) {
  static std::atomic<int> n{0};
  const std::string sfx = std::to_string(::getpid()) + "-" + std::to_string(n++);
  std::istringstream in(Python(
      "import boto3, json\n"
      "iam = boto3.client('iam', endpoint_url='" + m->endpoint() + "', region_name='us-east-1',\n"
      "                   aws_access_key_id='x', aws_secret_access_key='y')\n"
      "allow = lambda a: json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': a, "
      "'Resource': '*'}]})\n"
      "iam.create_user(UserName='admin-" + sfx + "')\n"
      "iam.put_user_policy(UserName='admin-" + sfx + "', PolicyName='all', PolicyDocument=allow('*'))\n"
      "k = iam.create_access_key(UserName='admin-" + sfx + "')['AccessKey']\n"
      "trust = json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Principal': "
      "{'AWS': '*', 'Federated': '*'}, 'Action': ['sts:AssumeRole', 'sts:AssumeRoleWithWebIdentity']}]})\n"
      "r = iam.create_role(RoleName='s3-" + sfx + "', AssumeRolePolicyDocument=trust)['Role']\n"
      "iam.put_role_policy(RoleName='s3-" + sfx + "', PolicyName='s3', PolicyDocument=allow('s3:*'))\n"
      "print(k['AccessKeyId'], k['SecretAccessKey'], r['Arn'])\n"));
  MotoIam out;
  in >> out.admin_id >> out.admin_secret >> out.role_arn;
  REQUIRE(!out.role_arn.empty());
  return out;
}

// Whatever happens, moto stops checking signatures at the end of the scope.
struct AuthOn {
  testing::MotoServer* m;
  explicit AuthOn(testing::MotoServer* s) : m(s) { REQUIRE(m->SetAuthAfter("0").ok()); }
  ~AuthOn() { (void)m->SetAuthAfter("inf"); }
};

}  // namespace

TEST_CASE("credentials: one background refresh before expiry, callers wait only for expired credentials", "[credentials]") {
  test::ManualClockEnv env(int64_t(1767225600) * 1000000);
  auto owned = std::make_unique<ScriptedSource>(&env, 100000);  // valid 100 s
  ScriptedSource* src = owned.get();
  s3::CredentialProvider p(std::move(owned), &env);
  CHECK(src->calls() == 0);  // nothing is fetched before it is needed

  CHECK(GetKeyId(p) == "AKID1");
  CHECK(p.fetches() == 1);
  env.Advance(40 * 1000000);  // 60 s left: not yet in the refresh window (50 s before expiry)
  CHECK(GetKeyId(p) == "AKID1");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(src->calls() == 1);

  // In the refresh window, with the source hanging: every caller gets the
  // current credentials at once, and one refresh runs for all of them.
  src->SetGate(false);
  env.Advance(15 * 1000000);  // 45 s left
  std::atomic<int64_t> slowest_us{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 16; t++)
    ts.emplace_back([&] {
      for (int i = 0; i < 200; i++) {
        const auto t0 = Clock::now();
        s3::AwsCredentials c;
        if (!p.Get(&c).ok() || c.access_key_id != "AKID1") wrong++;
        const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
        int64_t cur = slowest_us.load();
        while (us > cur && !slowest_us.compare_exchange_weak(cur, us)) {
        }
      }
    });
  for (auto& t : ts) t.join();
  CHECK(wrong == 0);
  CHECK(slowest_us < 2000000);  // 3,200 calls, none waited for the refresh (it hangs until the gate opens)
  REQUIRE(src->WaitCalls(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(src->calls() == 2);  // one refresh, not one per caller
  src->SetGate(true);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (GetKeyId(p) != "AKID2" && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(GetKeyId(p) == "AKID2");

  // Expired: a caller must wait, and gets the fresh credentials.
  src->SetGate(false);
  env.Advance(200 * 1000000);
  std::atomic<bool> returned{false};
  std::string got;
  std::thread waiter([&] {
    s3::AwsCredentials c;
    if (p.Get(&c).ok()) got = c.access_key_id;
    returned = true;
  });
  REQUIRE(src->WaitCalls(3));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK_FALSE(returned);  // expired credentials are never handed out
  src->SetGate(true);
  waiter.join();
  CHECK(got == "AKID3");

  // A failing refresh keeps valid credentials in use; once they expire the
  // error names the source and holds no secret.
  src->SetFail(true);
  env.Advance(60 * 1000000);  // 40 s left
  CHECK(GetKeyId(p) == "AKID3");
  REQUIRE(src->WaitCalls(4));
  env.Advance(100 * 1000000);
  s3::AwsCredentials c;
  Status s = p.Get(&c);
  INFO(s.ToString());
  CHECK(s.code() == Code::kUnavailable);
  CHECK(s.message().find("scripted source is down") != std::string::npos);
  src->SetFail(false);
  env.Advance(120 * 1000000);  // past the backoff: the next Get fetches again
  CHECK(GetKeyId(p).rfind("AKID", 0) == 0);

  // Redaction covers the current and the previous set.
  const std::string redacted = p.Redact("secret-3 token-3 AKID3 secret-2");
  CHECK(redacted.find("secret-3") == std::string::npos);
  CHECK(redacted.find("token-3") == std::string::npos);
  CHECK(redacted.find("AKID3") == std::string::npos);

  // A server's "expired" on the current keys forces a wait for new ones.
  const std::string current = GetKeyId(p);
  CHECK(p.Invalidate(current));
  CHECK(GetKeyId(p) != current);
  CHECK_FALSE(p.Invalidate("AKID-unknown"));
}

TEST_CASE("credentials: the chain picks env, profiles (role_arn, web identity, credential_process), web identity, ECS, IMDS in order", "[credentials]") {
  test::EnvVars guard(test::AwsCredentialVars());
  test::TempDir dir;
  WriteFile(dir / "proc.sh",
            "echo '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", \"SecretAccessKey\": \"secret-proc\", "
            "\"SessionToken\": \"tok-proc\", \"Expiration\": \"2030-01-01T00:00:00+01:00\"}'\n");
  WriteFile(dir / "fail.sh", "echo '{\"AccessKeyId\": \"AKIDLEAK\", \"SecretAccessKey\": \"secret-leak\"}'\nexit 3\n");
  WriteFile(dir / "config",
            "[default]\nregion = eu-west-1\n\n"
            "[profile proc]\ncredential_process = sh " + dir / "proc.sh" + "\n"
            "[profile procfail]\ncredential_process = sh " + dir / "fail.sh" + "\n"
            "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = base\n"
            "[profile web]\nrole_arn = arn:aws:iam::123456789012:role/w\nweb_identity_token_file = " + dir / "tok" + "\n"
            "[profile loop]\nrole_arn = arn:aws:iam::123456789012:role/l\nsource_profile = loop2\n"
            "[profile loop2]\nrole_arn = arn:aws:iam::123456789012:role/l2\nsource_profile = loop\n"
            "[profile ec2role]\nrole_arn = arn:aws:iam::123456789012:role/e\ncredential_source = Ec2InstanceMetadata\n"
            "[sso-session x]\naws_access_key_id = NOTAPROFILE\n");
  WriteFile(dir / "credentials", "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = secret-base\n");
  setenv("AWS_CONFIG_FILE", (dir / "config").c_str(), 1);
  setenv("AWS_SHARED_CREDENTIALS_FILE", (dir / "credentials").c_str(), 1);
  std::unique_ptr<s3::CredentialSource> src;
  s3::TimedCredentials t;

  // 1. The environment first.
  setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "secret-env", 1);
  setenv("AWS_PROFILE", "proc", 1);
  REQUIRE(Resolve("", &src).ok());
  REQUIRE(src->Fetch(&t).ok());
  CHECK(t.creds.access_key_id == "AKIDENV");
  CHECK(t.expires_ms == 0);
  // ... but an explicit URL profile wins over everything.
  REQUIRE(Resolve("base", &src).ok());
  REQUIRE(src->Fetch(&t).ok());
  CHECK(t.creds.access_key_id == "AKIDBASE");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  Status s = Resolve("", &src);
  CHECK(s.code() == Code::kUnauthenticated);
  CHECK(s.message().find("set both") != std::string::npos);
  unsetenv("AWS_ACCESS_KEY_ID");

  // 2. Profiles: credential_process, with an offset Expiration.
  REQUIRE(Resolve("", &src).ok());
  REQUIRE(src->Fetch(&t).ok());
  CHECK(t.creds.access_key_id == "AKIDPROC");
  CHECK(t.creds.session_token == "tok-proc");
  CHECK(t.expires_ms == int64_t(1893452400) * 1000);  // 2029-12-31T23:00:00Z
  REQUIRE(Resolve("procfail", &src).ok());
  s = src->Fetch(&t);
  INFO(s.ToString());
  CHECK(s.code() == Code::kUnauthenticated);
  CHECK(s.message().find("exit status 3") != std::string::npos);
  CHECK(s.message().find("secret-leak") == std::string::npos);
  REQUIRE(Resolve("role", &src).ok());
  CHECK(src->Describe().find("STS AssumeRole for role arn:aws:iam::123456789012:role/r") != std::string::npos);
  REQUIRE(Resolve("web", &src).ok());
  CHECK(src->Describe().find("AssumeRoleWithWebIdentity") != std::string::npos);
  REQUIRE(Resolve("ec2role", &src).ok());
  CHECK(src->Describe().find("AssumeRole for role arn:aws:iam::123456789012:role/e") != std::string::npos);
  s = Resolve("loop", &src);  // a source_profile cycle ends with an error, not a hang
  CHECK(s.code() == Code::kUnauthenticated);
  s = Resolve("x", &src);  // [sso-session x] is no profile
  CHECK(s.message().find("no profile 'x'") != std::string::npos);
  setenv("AWS_PROFILE", "missing", 1);
  s = Resolve("", &src);
  CHECK(s.code() == Code::kUnauthenticated);
  CHECK(s.message().find("'missing'") != std::string::npos);
  unsetenv("AWS_PROFILE");

  // [default] holds only a region: the chain goes on. 3. Web identity.
  setenv("AWS_WEB_IDENTITY_TOKEN_FILE", (dir / "tok").c_str(), 1);
  setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa", 1);
  REQUIRE(Resolve("", &src).ok());
  CHECK(src->Describe().find("AssumeRoleWithWebIdentity for role arn:aws:iam::123456789012:role/irsa") !=
        std::string::npos);
  unsetenv("AWS_ROLE_ARN");
  CHECK(Resolve("", &src).message().find("set both") != std::string::npos);
  unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");

  // 4. Container credentials; plain http only to this machine.
  setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds", 1);
  REQUIRE(Resolve("", &src).ok());
  CHECK(src->Describe() == "container credentials at http://127.0.0.1:9/creds");
  setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds", 1);
  CHECK(Resolve("", &src).code() == Code::kInvalidArgument);
  unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc", 1);
  REQUIRE(Resolve("", &src).ok());
  CHECK(src->Describe() == "container credentials at http://169.254.170.2/v2/credentials/abc");
  unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");

  // 5. Instance metadata, unless disabled.
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/", 1);
  REQUIRE(Resolve("", &src).ok());
  CHECK(src->Describe() == "EC2 instance metadata (IMDSv2) at http://127.0.0.1:9");
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  s = Resolve("", &src);
  CHECK(s.code() == Code::kUnauthenticated);
  CHECK(s.message().find("AWS_ACCESS_KEY_ID") != std::string::npos);
}

TEST_CASE("credentials: IMDSv2 keys expiring in seconds are refreshed in the background, requests never wait", "[credentials]") {
  test::EnvVars guard(test::AwsCredentialVars());
  auto fake = StartFake({"--lifetime", "4"});
  REQUIRE(fake->Get("/set?delay_ms=500") == "ok");  // every fetch takes 0.5 s
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake->endpoint().c_str(), 1);
  setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
  setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
  auto http = NewHttp();
  std::unique_ptr<s3::CredentialSource> src;
  REQUIRE(Resolve("", &src, http).ok());
  {  // the provider (and its refresh thread) ends before the environment changes
  s3::CredentialProvider p(std::move(src), nullptr);
  CHECK(fake->Stat("fetches") == 0);

  auto t0 = Clock::now();
  std::set<std::string> keys = {GetKeyId(p)};
  CHECK(Clock::now() - t0 >= std::chrono::milliseconds(450));  // the first caller waits for the first fetch
  int64_t slowest_ms = 0;
  const auto end = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < end) {
    t0 = Clock::now();
    keys.insert(GetKeyId(p));
    slowest_ms = std::max<int64_t>(
        slowest_ms, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const long fetches = fake->Stat("fetches");
  WARN("IMDSv2, 4 s credentials over 10 s: " << keys.size() << " key sets, " << fetches
                                             << " fetches, slowest Get " << slowest_ms << " ms");
  CHECK(keys.size() >= 4);
  CHECK(fetches <= 12);
  CHECK(slowest_ms < 400);  // refreshes (0.5 s each) ran in the background
  CHECK(fake->Stat("token_puts") == fetches);
  CHECK(fake->Stat("unauthorized") == 0);
  }

  // Unreachable instance metadata (not on EC2): the error says how to turn it off.
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);  // nothing listens
  REQUIRE(Resolve("", &src, http).ok());
  s3::CredentialProvider down(std::move(src), nullptr);
  s3::AwsCredentials c;
  Status s = down.Get(&c);
  INFO(s.ToString());
  CHECK(s.code() == Code::kUnavailable);
  CHECK(s.message().find("AWS_EC2_METADATA_DISABLED") != std::string::npos);
}

TEST_CASE("credentials: ECS container credentials with a rotated authorization token file", "[credentials]") {
  test::EnvVars guard(test::AwsCredentialVars());
  test::TempDir dir;
  WriteFile(dir / "token", "Bearer tok-1\n");
  auto fake = StartFake({"--lifetime", "3", "--ecs-token-file", dir / "token"});
  setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
  setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
  setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", (fake->endpoint() + "/ecs/credentials").c_str(), 1);
  setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", (dir / "token").c_str(), 1);
  auto http = NewHttp();
  std::unique_ptr<s3::CredentialSource> src;
  REQUIRE(Resolve("", &src, http).ok());
  {  // the provider (and its refresh thread) ends before the environment changes
  s3::CredentialProvider p(std::move(src), nullptr);
  std::set<std::string> keys;
  const auto start = Clock::now();
  while (Clock::now() - start < std::chrono::seconds(7)) {
    if (Clock::now() - start > std::chrono::seconds(3)) WriteFile(dir / "token", "Bearer tok-2\n");  // the agent rotates it
    keys.insert(GetKeyId(p));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(keys.size() >= 3);
  CHECK(fake->Stat("unauthorized") == 0);
  }

  // A wrong token is refused, and the message names the setting to fix.
  unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer wrong", 1);
  REQUIRE(Resolve("", &src, http).ok());
  s3::CredentialProvider bad(std::move(src), nullptr);
  s3::AwsCredentials c;
  Status s = bad.Get(&c);
  INFO(s.ToString());
  CHECK(s.code() == Code::kUnauthenticated);
  CHECK(s.message().find("AWS_CONTAINER_AUTHORIZATION_TOKEN") != std::string::npos);
  CHECK(s.message().find("wrong") == std::string::npos);
}

TEST_CASE("credentials: STS AssumeRole from a source profile and AssumeRoleWithWebIdentity on moto, S3 signatures checked", "[credentials][s3]") {
  testing::MotoServer* m = test::MotoForTest();
  if (!m) return;
  test::EnvVars guard(test::AwsCredentialVars());
  REQUIRE(m->CreateBucket("replite-sts").ok());
  const MotoIam iam = SetUpIam(m);
  test::TempDir dir;
  WriteFile(dir / "config", "[profile assume]\nrole_arn = " + iam.role_arn +
                                "\nsource_profile = admin\nrole_session_name = replite-test\n"
                                "[profile nosuchrole]\nrole_arn = arn:aws:iam::123456789012:role/none\n"
                                "source_profile = wrongkeys\n");
  WriteFile(dir / "credentials", "[admin]\naws_access_key_id = " + iam.admin_id + "\naws_secret_access_key = " +
                                     iam.admin_secret + "\n[wrongkeys]\naws_access_key_id = " + iam.admin_id +
                                     "\naws_secret_access_key = wrong-" + iam.admin_secret + "\n");
  WriteFile(dir / "web-token", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBsaXRlIn0.c2ln\n");
  setenv("AWS_CONFIG_FILE", (dir / "config").c_str(), 1);
  setenv("AWS_SHARED_CREDENTIALS_FILE", (dir / "credentials").c_str(), 1);
  setenv("AWS_ENDPOINT_URL_STS", m->endpoint().c_str(), 1);
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  AuthOn auth(m);
  auto http = NewHttp();
  const std::string base = "s3://replite-sts/pfx?endpoint=" + m->endpoint() + "&region=us-east-1";

  auto roundtrip = [&](const std::string& url_text, const std::string& key) {
    ReplicaUrl url;
    REQUIRE(ParseReplicaUrl(url_text, &url).ok());
    std::shared_ptr<ObjectStore> store;
    REQUIRE(OpenS3Store(url, http, nullptr, StoreConfig(), &store).ok());
    Status s = store->Put(key, "via " + key);
    INFO(s.ToString());
    REQUIRE(s.ok());
    std::string got;
    REQUIRE(store->Get(key, &got).ok());
    CHECK(got == "via " + key);
  };
  SECTION("AssumeRole with role_arn + source_profile") { roundtrip(base + "&profile=assume", "pfx/assumed"); }
  SECTION("AssumeRoleWithWebIdentity from the environment") {
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", (dir / "web-token").c_str(), 1);
    setenv("AWS_ROLE_ARN", iam.role_arn.c_str(), 1);
    setenv("AWS_ROLE_SESSION_NAME", "replite-irsa", 1);
    // Moto answers an unsigned request with HTTP 500 while it checks auth
    // (it reads a missing Authorization header), but AssumeRoleWithWebIdentity
    // is unsigned by design: let exactly one request (that one, the first
    // the store makes) through unchecked; the S3 requests after it are checked.
    REQUIRE(m->SetAuthAfter("1").ok());
    roundtrip(base, "pfx/web-identity");
  }
  SECTION("a refused AssumeRole names the role and the fix, and leaks no secret") {
    ReplicaUrl url;
    REQUIRE(ParseReplicaUrl(base + "&profile=nosuchrole", &url).ok());
    std::shared_ptr<ObjectStore> store;
    REQUIRE(OpenS3Store(url, http, nullptr, StoreConfig(), &store).ok());
    Status s = store->Put("pfx/never", "x");
    INFO(s.ToString());
    CHECK(s.code() == Code::kUnauthenticated);
    CHECK(s.message().find("arn:aws:iam::123456789012:role/none") != std::string::npos);
    CHECK(s.message().find(iam.admin_secret) == std::string::npos);
  }
}

TEST_CASE("credentials: replication across several expiries of IMDS keys loses nothing, moto checks every signature", "[credentials][s3][e2e]") {
  testing::MotoServer* m = test::MotoForTest();
  if (!m) return;
  test::EnvVars guard(test::AwsCredentialVars());
  const std::string bucket = "replite-refresh";
  REQUIRE(m->CreateBucket(bucket).ok());
  const MotoIam iam = SetUpIam(m);
  test::TempDir dir;
  auto fake = StartFake({"--lifetime", "4", "--moto", m->endpoint(), "--admin-id", iam.admin_id, "--admin-secret",
                         iam.admin_secret, "--issued-file", dir / "issued"});
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake->endpoint().c_str(), 1);
  setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
  setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);

  const int kDbs = 12;
  const std::string url = "s3://" + bucket + "/fleet?endpoint=" + m->endpoint() + "&region=us-east-1";
  std::vector<std::unique_ptr<test::Writer>> writers;
  for (int i = 0; i < kDbs; i++) {
    writers.push_back(std::make_unique<test::Writer>(dir / ("t" + std::to_string(i) + ".db")));
    writers.back()->Exec("CREATE TABLE t(i INTEGER PRIMARY KEY, v BLOB)");
  }
  std::mutex log_mu;
  std::string log;
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.replica_url = url;
  o.logger = [&](const std::string& line) {
    std::lock_guard<std::mutex> l(log_mu);
    log += line + "\n";
  };
  o.defaults.poll_interval_ms = 0;
  o.defaults.sync_interval_ms = 10;
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  for (int i = 0; i < kDbs; i++) REQUIRE(r->Add(dir / ("t" + std::to_string(i) + ".db")).ok());
  // Moto's signature check rejects any ListObjectsV2 whose prefix holds a
  // '/' (boto3's too: it does not encode the query as AWS does), and a
  // database's first sync lists its replica. So the first syncs run
  // unchecked; every request after them (segment PUTs, position and
  // head updates) is checked, with keys moto deletes once expired.
  for (int i = 0; i < kDbs; i++) REQUIRE(r->Sync(dir / ("t" + std::to_string(i) + ".db")).ok());
  std::optional<AuthOn> auth;
  auth.emplace(m);

  // ~14 s of commits: the keys expire (and are deleted from moto) 3 or 4 times.
  const auto start = Clock::now();
  int rounds = 0;
  std::string errors;
  while (Clock::now() - start < std::chrono::seconds(14) && errors.empty()) {
    for (int i = 0; i < kDbs; i++) {
      writers[i]->Exec("INSERT INTO t(v) VALUES (randomblob(300))");
      REQUIRE(r->Notify(dir / ("t" + std::to_string(i) + ".db")).ok());
    }
    for (int i = 0; i < kDbs; i++) {
      Status s = r->WaitDurable(dir / ("t" + std::to_string(i) + ".db"), 15000, nullptr);
      if (!s.ok()) {
        errors += s.ToString() + "\n";
        break;
      }
    }
    rounds++;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(errors);
  CHECK(errors.empty());
  std::string statuses;
  for (int i = 0; i < kDbs; i++) {
    DatabaseStatus ds;
    REQUIRE(r->GetStatus(dir / ("t" + std::to_string(i) + ".db"), &ds).ok());
    CHECK(ds.last_error.empty());
    statuses += ds.last_error + ds.replica_url + "\n";
  }
  const std::string metrics = r->Metrics();
  REQUIRE(r->Close().ok());
  auth.reset();  // restores list too (see above)
  const long fetches = fake->Stat("fetches"), deleted = fake->Stat("deleted");
  WARN(kDbs << " databases, " << rounds << " rounds over 14 s with 4 s keys: " << fetches
            << " credential fetches, " << deleted << " expired keys deleted from moto");
  CHECK(deleted >= 3);        // the keys really expired several times during the run
  CHECK(fetches <= 14);       // one shared refresh, not one per database (12 databases)

  // Every database restores (through the same chain, moto still checking)
  // to exactly its source.
  for (int i = 0; i < kDbs; i++) {
    const std::string name = "t" + std::to_string(i);
    std::string child = url;
    child.insert(child.find('?'), "/" + name);
    const std::string out = dir / (name + "-restored.db");
    Status s = Restore(child, out, RestoreOptions());
    INFO(s.ToString());
    REQUIRE(s.ok());
    CHECK(test::IntegrityCheck(out) == "ok\n");
    CHECK(test::DumpContent(out) == test::DumpContent(dir / (name + ".db")));
  }

  // No issued credential in any log line, status or metric.
  std::istringstream issued(ReadFile(dir / "issued"));
  std::string id, secret, all = log + statuses + metrics + errors;
  int n = 0;
  while (issued >> id >> secret) {
    n++;
    CHECK(all.find(secret) == std::string::npos);
    CHECK(all.find(id) == std::string::npos);
  }
  CHECK(n == fake->Stat("fetches"));
}

TEST_CASE("credentials: stores of one registry share one provider, and keys revoked early are replaced at once", "[credentials][s3]") {
  testing::MotoServer* m = test::MotoForTest();
  if (!m) return;
  test::EnvVars guard(test::AwsCredentialVars());
  REQUIRE(m->CreateBucket("replite-share-a").ok());
  REQUIRE(m->CreateBucket("replite-share-b").ok());
  const MotoIam iam = SetUpIam(m);
  auto fake = StartFake({"--lifetime", "3600", "--moto", m->endpoint(), "--admin-id", iam.admin_id,
                         "--admin-secret", iam.admin_secret});
  setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake->endpoint().c_str(), 1);
  setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
  setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
  AuthOn auth(m);
  StoreRegistry reg(Env::Default(), StoreConfig{});
  std::shared_ptr<ObjectStore> a, b;
  ReplicaUrl ua, ub;
  REQUIRE(ParseReplicaUrl("s3://replite-share-a/x?endpoint=" + m->endpoint() + "&region=us-east-1", &ua).ok());
  REQUIRE(ParseReplicaUrl("s3://replite-share-b/y?endpoint=" + m->endpoint() + "&region=us-east-1", &ub).ok());
  REQUIRE(reg.Open(ua, &a).ok());
  REQUIRE(reg.Open(ub, &b).ok());
  REQUIRE(a != b);
  for (int i = 0; i < 5; i++) {
    REQUIRE(a->Put("x/k" + std::to_string(i), "a").ok());
    REQUIRE(b->Put("y/k" + std::to_string(i), "b").ok());
  }
  CHECK(fake->Stat("fetches") == 1);  // two stores, one provider, one fetch

  // The keys are revoked long before their advertised expiry: the first
  // request refused with InvalidAccessKeyId fetches new ones and is retried
  // once, so the caller sees no error; both stores use the new keys.
  REQUIRE(fake->Get("/revoke") == "ok");
  Status s = a->Put("x/after-revoke", "a");
  INFO(s.ToString());
  CHECK(s.ok());
  CHECK(b->Put("y/after-revoke", "b").ok());
  CHECK(fake->Stat("fetches") == 2);
}
