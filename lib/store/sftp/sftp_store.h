// The SFTP ObjectStore, for sftp://USER@HOST[:PORT]/PATH replica URLs,
// through libcurl's SFTP (libssh2). Keys are paths below the server's "/"
// (PATH is absolute: sftp://u@h/home/u/backups).
//
// Auth: public key only, never a password. ?key=PATH names the private
// key (PATH.pub is used when it exists; a passphrase comes from
// REPLITE_SFTP_KEY_PASSPHRASE); without key=, the agent at SSH_AUTH_SOCK.
// Host key: checked against ?known-hosts=PATH (default ~/.ssh/known_hosts);
// an unknown or changed host key is refused with kUnauthenticated naming
// the fix. ?insecure-skip-host-key=true turns the check off (tests only).
//
// Sessions: ?sessions=N (default 4, 1..64) SSH connections at most, kept
// open and shared by every database using this store (sftp_sessions.h).
//
// Semantics and their limits (SFTP v3 as OpenSSH serves it, libssh2 1.10):
// - Put/PutFile upload to KEY.tmp-<random> (mode 0600, missing directories
//   created 0700) and rename it onto KEY. OpenSSH's rename refuses an
//   existing target (link(2) semantics), so a new key appears atomically
//   and If-None-Match is atomic on the server. Overwriting an existing key
//   is remove + rename (libssh2 1.10 cannot send posix-rename@openssh.com):
//   a reader racing it may find the key missing for one round trip, so a
//   Get that finds no key looks again after 5 ms, and then, while its
//   directory shows a temporary of it (a write in flight) or the key
//   itself, after growing pauses (up to 8 looks) before answering
//   kNotFound: a missing key costs 5 ms and one listing more. Get
//   also compares the key's mtime before the open and after the read
//   (libcurl takes the size from a stat by name) and reads again when an
//   overwrite came between: one extra round trip per Get.
// - ETags are "<mtime seconds>-<size>"; an overwrite sets the new file's
//   mtime past the old one's, so every version of a key has a new ETag.
//   If-Match is advisory (checked, then replaced: two writers can both
//   pass), as for file://; leases across hosts need s3:// or abs://.
// - A ranged Get that starts past the end of a key returns nothing (as
//   the other backends do), at the price of one reconnect: libcurl leaves
//   the file's SFTP handle open after refusing such a range, and closing
//   the connection is the only way to close it (see Run).
// - List walks directories recursively (one request per directory) and
//   parses OpenSSH's long names: sizes exact, mtime to the minute.
// - Delete removes each key (a missing key is fine) and then its emptied
//   parent directories.
// Retries: connection failures and timeouts, with HttpRetry's backoff.
// Nothing secret (passphrase) appears in errors or Describe().
//
// Thread-safety: an SFTP store may be used from any number of threads.
#pragma once

#include <memory>

#include "replite/status.h"
#include "replite/sys/env.h"
#include "replite/sys/object_store.h"
#include "store/replica_url.h"
#include "store/store_registry.h"

namespace replite {

// Opens the store for an sftp:// URL (passphrase from the environment).
// No connection is made here: a wrong host or key shows on first use.
Status OpenSftpStore(const ReplicaUrl& url, Env* env, const StoreConfig& config, std::shared_ptr<ObjectStore>* out);

// Same with an explicit key passphrase ("" = none).
Status OpenSftpStoreWithPassphrase(const ReplicaUrl& url, const std::string& passphrase, const StoreConfig& config,
                                   std::shared_ptr<ObjectStore>* out);

}  // namespace replite
