// Strict parsing of option values, one set of rules for every way in: the
// C ABI's "key=value" options and the CLI's flags (issue 14 item 5). Each
// parser takes the option's name as the user wrote it ("retention",
// "-poll-ms") and on a bad value returns kInvalidArgument naming the option,
// the value and the accepted form with an example, e.g.
//   option "-poll-ms": "abc" is not a duration: milliseconds, or a number
//   with a unit ms, s, m, h or d (e.g. 90s, 24h)
// Rules:
//  - integers: decimal digits only (no sign, spaces, exponent or suffix),
//    within the range given;
//  - durations: an integer with a unit ms, s, m, h or d ("90s", "24h"); a
//    bare integer is milliseconds only for options whose name says so
//    ("poll-interval-ms", "-poll-ms"): the name or the value gives the unit,
//    so "retention=24" is refused rather than read as 24 ms; at most 10 years;
//  - byte counts: an integer with an optional K, M or G (powers of 1024;
//    KB/KiB, MB/MiB, GB/GiB too);
//  - booleans: 1/0, true/false, yes/no, on/off;
//  - paths: non-empty;
//  - addresses: IPV4:PORT (or :PORT for 127.0.0.1), port 1..65535;
//  - txids: a positive integer; times: RFC 3339 with a zone.
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "replite/status.h"

namespace replite::config {

std::string Quote(std::string_view v);
// kInvalidArgument: option "NAME": "VALUE" is not FORM
Status BadValue(std::string_view name, std::string_view value, const std::string& form);

// Decimal digits only into *out; false on anything else or overflow.
bool ParseU64(std::string_view s, uint64_t* out);

Status ParseInt(std::string_view name, std::string_view v, int64_t min, int64_t max, int64_t* out);
// bare_ms: a number without a unit is milliseconds (the option's name ends
// in "-ms"); otherwise it is refused.
Status ParseDuration(std::string_view name, std::string_view v, bool bare_ms, int64_t* ms);
// A duration that must be > 0 (intervals that would otherwise mean "always").
Status ParsePositiveDuration(std::string_view name, std::string_view v, bool bare_ms, int64_t* ms);
Status ParseBytes(std::string_view name, std::string_view v, uint64_t* out);
Status ParseBool(std::string_view name, std::string_view v, bool* out);
Status ParsePath(std::string_view name, std::string_view v, std::string* out);
// "127.0.0.1:9090" or ":9090" (127.0.0.1); *out is the normalized HOST:PORT.
Status ParseAddress(std::string_view name, std::string_view v, std::string* out);
Status ParseTxid(std::string_view name, std::string_view v, uint64_t* out);
Status ParseTimestamp(std::string_view name, std::string_view v, int64_t* ms);
// A replica URL (ParseReplicaUrl's rules); "" is accepted (unset).
Status CheckReplicaUrl(std::string_view name, std::string_view v);

}  // namespace replite::config
