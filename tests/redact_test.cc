// [secrets] Issue 14 item 9: a replica URL holding user:password@ or a
// secret-looking query value was printed whole in every error and in the
// CLI banner. Whatever the way in (C++ API, C ABI, CLI) and whatever goes
// wrong with such a URL, the secret never appears in what is printed.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "replite.h"  // the C ABI
#include "replite/replite.h"
#include "test_util.h"
#include "util/redact.h"

using namespace replite;

namespace {

// Distinct, realistic-looking secrets: none is a substring of anything
// replite prints on its own.
const std::vector<std::string> kSecrets = {"AKIAZ7QX3EXAMPLE9K2L", "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY",
                                           "hunter2-Pa55w0rd", "sv2026sigQ9zXcVbN"};

std::vector<std::string> SecretUrls(const test::TempDir& dir) {
  return {
      "s3://AKIAZ7QX3EXAMPLE9K2L:wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY@bucket/prefix",
      "s3://bucket/prefix?secret_access_key=wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY",
      "s3://bucket/prefix?endpoint=http://AKIAZ7QX3EXAMPLE9K2L:hunter2-Pa55w0rd@127.0.0.1:9",
      "s3://bucket/prefix?region=x&sig=sv2026sigQ9zXcVbN&token=hunter2-Pa55w0rd",
      "file://admin:hunter2-Pa55w0rd@" + dir.path() + "/replica",
      "ftp://AKIAZ7QX3EXAMPLE9K2L:hunter2-Pa55w0rd@host/x?Password=sv2026sigQ9zXcVbN",
  };
}

void CheckNoSecret(const std::string& what, const std::string& printed) {
  INFO(what << " printed: " << printed);
  for (const auto& s : kSecrets) CHECK(printed.find(s) == std::string::npos);
}

}  // namespace

TEST_CASE("secrets: RedactUrl hides userinfo and secret query values and keeps the rest", "[secrets]") {
  CHECK(RedactUrl("s3://u:p@bucket/x") == "s3://REDACTED@bucket/x");
  CHECK(RedactUrl("file:///var/a@b/c") == "file:///var/a@b/c");  // an '@' in a path is no userinfo
  CHECK(RedactUrl("s3://b/p?region=eu&secret=abc&endpoint=http://127.0.0.1:9000") ==
        "s3://b/p?region=eu&secret=REDACTED&endpoint=http://127.0.0.1:9000");
  CHECK(RedactUrl("s3://b/p?endpoint=http://k:s@host:9000/x") == "s3://b/p?endpoint=http://REDACTED@host:9000/x");
  CHECK(RedactUrl("s3://b/p?%73ecret=abc") == "s3://b/p?%73ecret=REDACTED");
  CHECK(RedactUrl("s3://b/p?X-Amz-Signature=abc&AccessKey=k") == "s3://b/p?X-Amz-Signature=REDACTED&AccessKey=REDACTED");
  CHECK(RedactUrl("not a url") == "not a url");
  CHECK(RedactUrl("s3://bucket/prefix?profile=prod") == "s3://bucket/prefix?profile=prod");
}

TEST_CASE("secrets: no secret in a replica URL is printed by the C++ API or the C ABI", "[secrets][capi]") {
  test::TempDir dir;
  const std::string db = dir / "app.db";
  {
    test::Writer w(db);
    w.Exec("CREATE TABLE t(v)");
  }
  for (const auto& url : SecretUrls(dir)) {
    {
      ReplicatorOptions o;
      o.state_dir = dir / "state";
      o.replica_url = url;
      std::unique_ptr<Replicator> r;
      Status s = Replicator::Open(o, &r);
      CHECK_FALSE(s.ok());
      CheckNoSecret("Open(replica_url=" + url + ")", s.ToString());
    }
    {
      ReplicatorOptions o;
      o.state_dir = dir / "state";
      o.logger = [](const std::string&) {};
      std::unique_ptr<Replicator> r;
      REQUIRE(Replicator::Open(o, &r).ok());
      DatabaseOptions d;
      d.replica_url = url;
      Status s = r->Add(db, d);
      CHECK_FALSE(s.ok());
      CheckNoSecret("Add(" + url + ")", s.ToString());
      CHECK(r->Close().ok());
    }
    Status s = Restore(url, dir / "out.db", RestoreOptions());
    CHECK_FALSE(s.ok());
    CheckNoSecret("Restore(" + url + ")", s.ToString());
    std::vector<GenerationInfo> gens;
    s = ListGenerations(url, &gens);
    CHECK_FALSE(s.ok());
    CheckNoSecret("ListGenerations(" + url + ")", s.ToString());

    char* err = nullptr;
    replite_options* o = replite_options_create();
    CHECK(replite_options_set(o, "replica-url", url.c_str(), &err) != 0);
    CheckNoSecret("replite_options_set replica-url", err ? err : "");
    replite_free(err);
    err = nullptr;
    REQUIRE(replite_options_set(o, "state-dir", (dir / "cstate").c_str(), &err) == 0);
    replite_replicator* r = nullptr;
    REQUIRE(replite_replicator_open(o, &r, &err) == 0);
    replite_options_destroy(o);
    CHECK(replite_db_add(r, db.c_str(), url.c_str(), &err) != 0);
    CheckNoSecret("replite_db_add", err ? err : "");
    replite_free(err);
    err = nullptr;
    CHECK(replite_db_add_with(r, db.c_str(), ("replica-url=" + url).c_str(), &err) != 0);
    CheckNoSecret("replite_db_add_with", err ? err : "");
    replite_free(err);
    err = nullptr;
    CHECK(replite_replicator_close(r, &err) == 0);
    CHECK(replite_restore(url.c_str(), (dir / "out.db").c_str(), nullptr, nullptr, nullptr, &err) != 0);
    CheckNoSecret("replite_restore", err ? err : "");
    replite_free(err);
    err = nullptr;
    CHECK(replite_generations_json(url.c_str(), &err) == nullptr);
    CheckNoSecret("replite_generations_json", err ? err : "");
    replite_free(err);
  }
}

TEST_CASE("secrets: no secret in a replica URL is printed by the CLI", "[secrets][cli]") {
  test::TempDir dir;
  const std::string db = dir / "app.db", cli = REPLITE_CLI_PATH;
  {
    test::Writer w(db);
    w.Exec("CREATE TABLE t(v)");
  }
  for (const auto& url : SecretUrls(dir)) {
    std::string out;
    const std::string q = "'" + url + "'";
    for (const std::string& cmd :
         {"'" + cli + "' replicate -once -state '" + dir / "state" + "' '" + db + "' " + q,
          "'" + cli + "' replicate -once -state '" + dir / "state" + "' '" + db + "' '" + dir / "none.db" + "' " + q,
          "'" + cli + "' replicate -once -state '" + dir / "state" + "' -dir '" + dir.path() + "' " + q,
          "'" + cli + "' restore -o '" + dir / "out.db" + "' " + q, "'" + cli + "' generations " + q}) {
      CHECK(test::Shell(cmd, &out) != 0);
      CheckNoSecret(cmd, out);
    }
  }
}
