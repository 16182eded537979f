#include "azurite_server.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "server_process.h"

namespace replite::testing {
namespace {

constexpr const char* kDevKey =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

// azurite's blob entry point, or "" (and *why).
std::string FindAzurite(std::string* why) {
  const std::string dir = AzuriteServer::InstallDir();
  const std::string main_js = dir + "/node_modules/azurite/dist/src/blob/main.js";
  struct stat st;
  if (stat(main_js.c_str(), &st) == 0) return main_js;
  *why = "azurite is not installed at " + dir + " (run scripts/install-deps.sh, which runs npm install azurite "
         "there, or set REPLITE_AZURITE_DIR to a directory holding node_modules/azurite)";
  return "";
}

// Any HTTP answer (azurite answers an unsigned request with 403) means up.
bool Answers(const std::string& url) {
  CURL* e = curl_easy_init();
  if (!e) return false;
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);  // only asks whether it is up
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  CURLcode rc = curl_easy_perform(e);
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(e);
  return rc == CURLE_OK && code > 0;
}

}  // namespace

std::string AzuriteServer::InstallDir() {
  const char* env = std::getenv("REPLITE_AZURITE_DIR");
  return env && *env ? env : std::string(REPLITE_SOURCE_DIR) + "/.deps/azurite";
}

std::unique_ptr<AzuriteServer> AzuriteServer::Start(std::string* why, bool tls_oauth) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const std::string main_js = FindAzurite(why);
  if (main_js.empty()) return nullptr;
  std::unique_ptr<AzuriteServer> a(new AzuriteServer());
  const int port = FreePort();
  if (port == 0) {
    *why = "no free TCP port on 127.0.0.1";
    return nullptr;
  }
  a->endpoint_ = std::string(tls_oauth ? "https" : "http") + "://127.0.0.1:" + std::to_string(port);
  char tmpl[] = "/tmp/replite-azurite-XXXXXX";
  if (!mkdtemp(tmpl)) {
    *why = "mkdtemp /tmp/replite-azurite-XXXXXX failed";
    return nullptr;
  }
  a->dir_ = tmpl;
  a->log_path_ = a->dir_ + ".log";
  std::vector<std::string> argv = {"node", main_js, "--blobHost", "127.0.0.1", "--blobPort", std::to_string(port),
                                   "--inMemoryPersistence", "--disableTelemetry", "--silent"};
  if (tls_oauth) {
    a->cert_path_ = a->dir_ + "/cert.pem";
    const std::string key = a->dir_ + "/key.pem";
    const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
                            "-addext subjectAltName=IP:127.0.0.1 -keyout '" + key + "' -out '" + a->cert_path_ +
                            "' >'" + a->log_path_ + "' 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      *why = "openssl could not make a test certificate (apt-get install openssl): " + Tail(a->log_path_);
      return nullptr;
    }
    argv.insert(argv.end(), {"--cert", a->cert_path_, "--key", key, "--oauth", "basic"});
  }
  a->pid_ = SpawnLogged(argv, a->log_path_, why, a->dir_);
  if (a->pid_ < 0) return nullptr;
  auto up = [&] { return Answers(a->endpoint_ + "/" + kAccount); };
  if (WaitUntilUp(a->pid_, up, "azurite (node " + main_js + ")", "is Node.js installed (scripts/install-deps.sh)?",
                  a->log_path_, why))
    return a;
  if (!ChildRunning(a->pid_)) a->pid_ = -1;
  return nullptr;
}

AzuriteServer* AzuriteServer::Shared(std::string* why) { return SharedServer<AzuriteServer>(why); }

AzuriteServer::~AzuriteServer() {
  StopChild(pid_);
  if (!log_path_.empty()) unlink(log_path_.c_str());
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

azure::Credentials AzuriteServer::Credentials() const {
  azure::Credentials c;
  c.account = kAccount;
  c.key = kDevKey;
  return c;
}

std::string AzuriteServer::ConnectionString() const {
  return std::string("DefaultEndpointsProtocol=http;AccountName=") + kAccount + ";AccountKey=" + kDevKey +
         ";BlobEndpoint=" + endpoint_ + "/" + kAccount + ";";
}

}  // namespace replite::testing
