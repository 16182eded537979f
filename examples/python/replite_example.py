#!/usr/bin/env python3
"""Use libreplite.so from Python with ctypes (no extra packages): replicate
a database written with Python's sqlite3 module, print its status, then
restore it (latest, and as of an earlier transaction) and check the rows.

    python3 replite_example.py [PATH/TO/libreplite.so]

The library path may also come from $REPLITE_LIB (default: libreplite.so
on the loader's search path). Exits non-zero if any step fails.
"""
import ctypes
import json
import os
import sqlite3
import sys
import tempfile


class ReplitError(Exception):
    pass


def load(path):
    lib = ctypes.CDLL(path)
    # Strings returned by the library are char* we must free with
    # replite_free, so they are declared as void* (not c_char_p, which
    # would copy them and lose the pointer).
    errp = ctypes.POINTER(ctypes.c_void_p)
    sigs = {
        "replite_version": (ctypes.c_char_p, []),
        "replite_free": (None, [ctypes.c_void_p]),
        "replite_error_name": (ctypes.c_char_p, [ctypes.c_int]),
        "replite_options_create": (ctypes.c_void_p, []),
        "replite_options_destroy": (None, [ctypes.c_void_p]),
        "replite_options_set": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, errp]),
        "replite_replicator_open": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), errp]),
        "replite_replicator_close": (ctypes.c_int, [ctypes.c_void_p, errp]),
        "replite_db_add": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, errp]),
        "replite_db_notify": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p]),
        "replite_db_wait_durable": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64,
                                                   ctypes.POINTER(ctypes.c_uint64), errp]),
        "replite_status_json": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p, errp]),
        "replite_restore": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                           ctypes.c_void_p, ctypes.c_void_p, errp]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


# void (*progress)(uint64_t done, uint64_t total, void* user)
PROGRESS = ctypes.CFUNCTYPE(None, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p)


def call(lib, fn, *args):
    """Calls fn(*args, &err); raises ReplitError with the library's message."""
    err = ctypes.c_void_p()
    rc = fn(*args, ctypes.byref(err))
    if rc != 0:
        msg = ctypes.string_at(err.value).decode() if err.value else "?"
        lib.replite_free(err)
        raise ReplitError(f"{fn.__name__}: {msg} ({lib.replite_error_name(rc).decode()})")


def take_string(lib, ptr):
    """Copies a char* returned by the library, then frees it."""
    try:
        return ctypes.string_at(ptr).decode()
    finally:
        lib.replite_free(ptr)


def count(path):
    with sqlite3.connect(path) as c:
        return c.execute("SELECT count(*) FROM notes").fetchone()[0]


def main():
    lib = load(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("REPLITE_LIB", "libreplite.so"))
    print("replite", lib.replite_version().decode())
    work = tempfile.TemporaryDirectory(prefix="replite-py-")
    db_path = os.path.join(work.name, "app.db").encode()
    replica_root = f"file://{work.name}/replica"

    # The application writes with Python's own sqlite3 module, in WAL mode.
    app = sqlite3.connect(db_path.decode(), isolation_level=None)
    app.execute("PRAGMA journal_mode=WAL")
    app.execute("CREATE TABLE notes(body TEXT)")

    opts = lib.replite_options_create()
    for key, value in [("replica-url", replica_root), ("state-dir", f"{work.name}/state"),
                       ("worker-threads", "2"), ("poll-interval-ms", "0")]:
        call(lib, lib.replite_options_set, opts, key.encode(), value.encode())
    r = ctypes.c_void_p()
    try:
        call(lib, lib.replite_replicator_open, opts, ctypes.byref(r))
    finally:
        lib.replite_options_destroy(opts)  # the replicator keeps a copy

    try:
        call(lib, lib.replite_db_add, r, db_path, None)  # -> <replica-url>/app
        # Python's sqlite3 cannot hand its sqlite3* to replite_db_attach, so
        # tell the replicator after each commit (or rely on polling).
        app.execute("INSERT INTO notes VALUES ('first')")
        lib.replite_db_notify(r, db_path)
        txid1 = ctypes.c_uint64()
        call(lib, lib.replite_db_wait_durable, r, db_path, 10000, ctypes.byref(txid1))

        app.executemany("INSERT INTO notes VALUES (?)", [("second",), ("third",)])
        lib.replite_db_notify(r, db_path)
        txid2 = ctypes.c_uint64()
        call(lib, lib.replite_db_wait_durable, r, db_path, 10000, ctypes.byref(txid2))

        err = ctypes.c_void_p()
        ptr = lib.replite_status_json(r, db_path, ctypes.byref(err))
        if not ptr:
            raise ReplitError(take_string(lib, err.value))
        status = json.loads(take_string(lib, ptr))
        print(json.dumps(status, indent=2))
        if status["durable_txid"] != txid2.value or status["last_error"] is not None:
            raise ReplitError(f"unexpected status: {status}")
    finally:
        call(lib, lib.replite_replicator_close, r)  # flushes, then frees
        app.close()

    # Restore the latest state, with a progress callback, and as of txid1.
    def progress(done, total, _user):
        print(f"restore: {done}/{total} bytes")

    cb = PROGRESS(progress)  # keep a reference while the call runs
    replica = f"{replica_root}/app".encode()
    latest = os.path.join(work.name, "latest.db")
    call(lib, lib.replite_restore, replica, latest.encode(), None, ctypes.cast(cb, ctypes.c_void_p), None)
    earlier = os.path.join(work.name, "earlier.db")
    call(lib, lib.replite_restore, replica, earlier.encode(), f"txid={txid1.value}".encode(), None, None)
    rows = (count(latest), count(earlier))
    print(f"restored: {rows[0]} rows at txid {txid2.value}, {rows[1]} row(s) at txid {txid1.value}")
    if rows != (3, 1):
        raise ReplitError(f"restored row counts {rows}, want (3, 1)")
    work.cleanup()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ReplitError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
