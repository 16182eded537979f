#include "azure_sas.h"

#include "store/s3/sigv4.h"
#include "util/base64.h"

namespace replite::testing {

std::string AccountSas(const azure::Credentials& key, const std::string& expiry) {
  const std::string version = "2019-12-12", perms = "rwdlac", services = "b", types = "sco";
  // Account SAS string to sign (versions 2015-04-05 to 2020-12-06):
  // account, permissions, services, resource types, start, expiry, IP,
  // protocol, version, each followed by a newline.
  const std::string to_sign =
      key.account + "\n" + perms + "\n" + services + "\n" + types + "\n\n" + expiry + "\n\n\n" + version + "\n";
  std::string raw_key;
  Base64Decode(key.key, &raw_key);
  const std::string sig = Base64Encode(s3::HmacSha256(raw_key, to_sign));
  return "sv=" + version + "&ss=" + services + "&srt=" + types + "&sp=" + perms +
         "&se=" + s3::UriEncode(expiry, false) + "&sig=" + s3::UriEncode(sig, false);
}

}  // namespace replite::testing
