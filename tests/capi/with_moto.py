#!/usr/bin/env python3
"""Runs a command against a fresh moto S3 server on 127.0.0.1.

    with_moto.py COMMAND [ARGS...]

Starts moto_server on a free port, creates the bucket "replite-capi", and
runs COMMAND with REPLITE_CAPI_S3_URL (an s3:// root URL on that server) and
dummy AWS credentials in its environment; stops the server afterwards and
exits with COMMAND's status. If moto_server cannot start it fails, unless
REPLITE_ALLOW_S3_SKIP=1, where it runs COMMAND without S3 (and says so).
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    exe = shutil.which("moto_server")
    if exe is None:
        return None, None, "moto_server is not on PATH"
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):  # up to 30 s: moto imports a lot on first start
        if proc.poll() is not None:
            return None, None, f"moto_server exited with {proc.returncode}"
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).read()
            return proc, endpoint, None
        except OSError:
            time.sleep(0.1)
    proc.kill()
    return None, None, "moto_server did not answer within 30 s"


def main():
    cmd = sys.argv[1:]
    env = dict(os.environ)
    proc, endpoint, why = start_moto()
    if proc is None:
        if os.environ.get("REPLITE_ALLOW_S3_SKIP") == "1":
            print(f"S3 skipped: {why}")
            return subprocess.call(cmd, env=env)
        print(f"cannot start moto_server: {why}", file=sys.stderr)
        return 1
    try:
        # An unsigned PUT creates the bucket: moto does not check by default.
        urllib.request.urlopen(urllib.request.Request(endpoint + "/replite-capi", method="PUT"), timeout=10).read()
        env.update({
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "",
            "REPLITE_CAPI_S3_URL": f"s3://replite-capi/capi?endpoint={endpoint}&region=us-east-1&force-path-style=true",
        })
        return subprocess.call(cmd, env=env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
