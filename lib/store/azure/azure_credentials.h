// Where Azure Blob Storage credentials come from, in order:
//   1. AZURE_STORAGE_CONNECTION_STRING: AccountName + AccountKey (Shared
//      Key) or SharedAccessSignature, and BlobEndpoint (or
//      DefaultEndpointsProtocol + EndpointSuffix); UseDevelopmentStorage=true
//      means azurite's well-known development account on 127.0.0.1:10000;
//   2. AZURE_STORAGE_KEY: the account's Shared Key (base64), for the account
//      named in the URL (abs://ACCOUNT@CONTAINER) or AZURE_STORAGE_ACCOUNT;
//   3. AZURE_STORAGE_SAS_TOKEN: a shared access signature (account or
//      container SAS, with or without the leading '?');
//   4. Microsoft Entra workload identity: AZURE_FEDERATED_TOKEN_FILE with
//      AZURE_CLIENT_ID and AZURE_TENANT_ID (AZURE_AUTHORITY_HOST optional),
//      as Kubernetes' workload identity webhook sets them;
//   5. Microsoft Entra managed identity, only when asked for with
//      AZURE_STORAGE_AUTH=managed-identity (so a machine outside Azure
//      never waits on the metadata address): IMDS, AZURE_CLIENT_ID for a
//      user-assigned identity, AZURE_IMDS_ENDPOINT to override the address.
// Entra tokens are fetched and refreshed by entra_token.h. Error messages
// name the source and the fix, never a secret value.
//
// Thread-safety: reads the environment only; safe from any thread as long
// as nobody calls setenv concurrently.
#pragma once

#include <string>

#include "replite/status.h"
#include "store/azure/entra_token.h"

namespace replite::azure {

// Never logged, never put in an error message.
struct Credentials {
  std::string account;        // storage account name
  std::string key;            // Shared Key, base64 ("" unless Shared Key)
  std::string sas_token;      // SAS query string without '?' ("" unless SAS)
  std::string blob_endpoint;  // from a connection string ("" = the default)
  EntraConfig entra;          // used when there is neither a key nor a SAS
};

// url_account: the ACCOUNT of abs://ACCOUNT@CONTAINER ("" when absent).
// *source receives where the credentials came from, for messages (e.g.
// "AZURE_STORAGE_KEY").
Status LoadCredentials(const std::string& url_account, Credentials* out, std::string* source);

// Parses a connection string (Key=Value pairs separated by ';').
Status ParseConnectionString(const std::string& cs, Credentials* out);

}  // namespace replite::azure
