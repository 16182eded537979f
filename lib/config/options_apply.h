// The option keys of replite, applied to the options structs with the rules
// of config/value_parse.h: the one place that turns "key=value" text into
// ReplicatorOptions, DatabaseOptions and RestoreOptions, for the C ABI
// (replite_options_set, replite_db_add_with, replite_restore) and the CLI
// (whose flags map to these keys: -poll-ms is poll-interval-ms, -state is
// state-dir, ...). The keys and their forms are documented in capi/replite.h.
//
// `shown` is the option's name as the user wrote it, for error messages
// (a CLI flag); empty: the key itself. On error the struct is unchanged.
// Thread-safety: stateless functions.
#pragma once

#include <string_view>

#include "replite/options.h"
#include "replite/restore.h"
#include "replite/status.h"

namespace replite::config {

// "replica-url, sync-interval-ms, ...": the per-database keys, for messages.
const char* DbOptionKeys();

// A per-database key; *known = false (and OK) for a key that is not one.
Status ApplyDbOption(DatabaseOptions* o, std::string_view key, std::string_view value, bool* known,
                     std::string_view shown = {});
// A Replicator-wide key, or a per-database key applied to o->defaults;
// an unknown key is kInvalidArgument listing the known ones.
Status ApplyReplicatorOption(ReplicatorOptions* o, std::string_view key, std::string_view value,
                             std::string_view shown = {});
// txid, timestamp, overwrite, parallelism, stop-at-last-good.
Status ApplyRestoreOption(RestoreOptions* o, std::string_view key, std::string_view value,
                          std::string_view shown = {});

}  // namespace replite::config
