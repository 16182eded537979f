// AzuriteServer: a real Azure Blob Storage endpoint for tests. Starts
// azurite's blob service (npm package azurite, installed by
// scripts/install-deps.sh under .deps/azurite, or REPLITE_AZURITE_DIR) with
// node on 127.0.0.1 and a free port, in memory, and kills it when
// destroyed. azurite checks Shared Key and SAS signatures, so every request
// the store signs is verified.
//
// Thread-safety: Shared() is safe to call from any thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "store/azure/azure_credentials.h"

namespace replite::testing {

class AzuriteServer {
 public:
  // azurite's well-known development account.
  static constexpr const char* kAccount = "devstoreaccount1";

  // Starts a new server; nullptr (and *why, naming the fix) on failure.
  // With tls_oauth it serves https with a self-signed certificate for
  // 127.0.0.1 (cert_path(); clients pass it as ca-file=) and accepts Entra
  // Bearer tokens (--oauth basic: issuer, audience and lifetime checked, not
  // the token's signature).
  static std::unique_ptr<AzuriteServer> Start(std::string* why, bool tls_oauth = false);
  // Where azurite (and @azure/storage-blob, the independent reader) are
  // installed: REPLITE_AZURITE_DIR, else .deps/azurite in the source tree.
  static std::string InstallDir();
  // The process-wide server (started on first call, stopped at exit).
  static AzuriteServer* Shared(std::string* why);
  ~AzuriteServer();

  const std::string& endpoint() const { return endpoint_; }  // "http[s]://127.0.0.1:PORT"
  const std::string& cert_path() const { return cert_path_; }  // "" without TLS
  // The development account's Shared Key credentials for this server.
  azure::Credentials Credentials() const;
  // AccountName=...;AccountKey=...;BlobEndpoint=... for this server.
  std::string ConnectionString() const;

 private:
  AzuriteServer() = default;
  pid_t pid_ = -1;
  std::string endpoint_;
  std::string dir_;  // azurite's working directory (removed at the end)
  std::string log_path_;
  std::string cert_path_;
};

}  // namespace replite::testing
