// Redaction of secrets in URLs before they are printed (DESIGN.md §3.6).
// Replica URLs carry no secret by design (keys come from the environment or
// a profile), but a user may still paste one into a URL: "user:pass@" in the
// authority, or a query value such as "?secret=..." or "&sig=...". Every
// place that prints a URL the user gave, before or without it being parsed
// (errors, logs, the CLI banner), prints RedactUrl(url) instead.
#pragma once

#include <string>

namespace replite {

// `url` with the userinfo of every authority (its own, and one of a URL in
// a query value such as endpoint=http://u:p@host) and the value of every
// query parameter whose name looks secret (secret, key, token, pass, pwd,
// sig, signature, credential, auth, sas) replaced by "REDACTED". Text that
// is not a URL comes back unchanged.
std::string RedactUrl(const std::string& url);

}  // namespace replite
