#!/usr/bin/env python3
"""fake_aws_metadata.py: a fake EC2 instance metadata service (IMDSv2 only)
and ECS container credentials endpoint on 127.0.0.1, handing out credentials
that expire after --lifetime seconds, for replite's credential refresh tests.
Python 3 standard library, plus boto3 when --moto is given.

    python3 fake_aws_metadata.py --lifetime 4 [--moto http://127.0.0.1:PORT
        --admin-id AKIA... --admin-secret ...] [--ecs-token T | --ecs-token-file F]
        [--issued-file PATH] [--parent-pid PID]

prints one line "READY <port>" on stdout once listening.

IMDSv2:  PUT /latest/api/token (needs x-aws-ec2-metadata-token-ttl-seconds)
         GET /latest/meta-data/iam/security-credentials/        -> role name
         GET /latest/meta-data/iam/security-credentials/ROLE    -> JSON
         (GETs without a valid x-aws-ec2-metadata-token: 401)
ECS:     GET /ecs/credentials (Authorization must equal the token, read
         again from --ecs-token-file on every request)          -> JSON
Control: GET /stats -> {"token_puts", "fetches", "unauthorized", "deleted",
         "live_keys"}; GET /set?delay_ms=N (delay every credential answer),
         GET /set?fail=N (the next N credential answers are HTTP 500);
         GET /revoke (with --moto: delete every key handed out, now)

Without --moto the keys are random. With --moto each credential answer is a
new access key of a real moto IAM user (users replite-rot-0..7, allowed
s3:*), created with the admin keys, and a reaper deletes every key one
second after its advertised Expiration: moto then refuses it, exactly as AWS
refuses expired credentials. So S3 requests succeed only with keys that were
refreshed in time. (Moto refuses a session token with IAM user keys, so
these answers carry an empty Token.) --issued-file receives one line
"KEY_ID SECRET TOKEN" per answer, so a test can prove none of them leaked.
"""

import argparse
import datetime
import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ROLE = "replite-instance-role"
USERS = ["replite-rot-%d" % i for i in range(8)]

lock = threading.Lock()
stats = {"token_puts": 0, "fetches": 0, "unauthorized": 0, "deleted": 0, "live_keys": 0}
control = {"delay_ms": 0, "fail": 0}
tokens = set()
live = []  # (expires_epoch, user, key_id)
args = None
iam = None
next_user = 0


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_credentials():
    global next_user
    expires = time.time() + args.lifetime
    if iam is None:
        return {"AccessKeyId": "ASIAFAKE" + secrets.token_hex(6).upper(),
                "SecretAccessKey": "fake-secret-" + secrets.token_hex(16),
                "Token": "fake-token-" + secrets.token_hex(24), "Expiration": iso(expires)}
    with lock:
        user = USERS[next_user % len(USERS)]
        next_user += 1
    k = iam.create_access_key(UserName=user)["AccessKey"]
    with lock:
        live.append((expires, user, k["AccessKeyId"]))
        stats["live_keys"] = len(live)
    return {"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"], "Token": "",
            "Expiration": iso(expires)}


def reaper():
    while True:
        time.sleep(0.1)
        now = time.time()
        with lock:
            due = [e for e in live if e[0] + 1.0 <= now]
        for e in due:
            try:
                iam.delete_access_key(UserName=e[1], AccessKeyId=e[2])
            except Exception as ex:  # noqa: BLE001 - reported in stats, keep serving
                print("reaper: %s" % ex, file=sys.stderr)
            with lock:
                live.remove(e)
                stats["deleted"] += 1
                stats["live_keys"] = len(live)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def credentials(self):
        with lock:
            delay = control["delay_ms"]
            fail = control["fail"] > 0
            if fail:
                control["fail"] -= 1
        if delay:
            time.sleep(delay / 1000.0)
        if fail:
            return self.reply(500, "injected failure")
        c = new_credentials()
        with lock:
            stats["fetches"] += 1
            if args.issued_file:
                with open(args.issued_file, "a") as f:
                    f.write("%s %s %s\n" % (c["AccessKeyId"], c["SecretAccessKey"], c["Token"]))
        c["Code"] = "Success"
        c["Type"] = "AWS-HMAC"
        c["LastUpdated"] = iso(time.time())
        self.reply(200, json.dumps(c), "application/json")

    def do_PUT(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if self.path != "/latest/api/token" or not self.headers.get("x-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(400, "bad token request")
        t = secrets.token_hex(16)
        with lock:
            tokens.add(t)
            stats["token_puts"] += 1
        self.reply(200, t)

    def do_GET(self):
        u = urlparse(self.path)
        if u.path == "/stats":
            with lock:
                return self.reply(200, json.dumps(stats), "application/json")
        if u.path == "/revoke":
            with lock:
                due = list(live)
            for e in due:
                iam.delete_access_key(UserName=e[1], AccessKeyId=e[2])
                with lock:
                    live.remove(e)
                    stats["deleted"] += 1
                    stats["live_keys"] = len(live)
            return self.reply(200, "ok")
        if u.path == "/set":
            q = parse_qs(u.query)
            with lock:
                for k in ("delay_ms", "fail"):
                    if k in q:
                        control[k] = int(q[k][0])
            return self.reply(200, "ok")
        if u.path == "/ecs/credentials":
            want = args.ecs_token
            if args.ecs_token_file:
                with open(args.ecs_token_file) as f:
                    want = f.read().strip()
            if want and self.headers.get("Authorization") != want:
                with lock:
                    stats["unauthorized"] += 1
                return self.reply(401, "unauthorized")
            return self.credentials()
        base = "/latest/meta-data/iam/security-credentials/"
        if u.path.startswith(base):
            with lock:
                ok = self.headers.get("x-aws-ec2-metadata-token") in tokens
                if not ok:
                    stats["unauthorized"] += 1
            if not ok:
                return self.reply(401, "")
            rest = u.path[len(base):]
            if rest == "":
                return self.reply(200, ROLE)
            if rest == ROLE:
                return self.credentials()
        self.reply(404, "not found")


def main():
    global args, iam
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=4.0)
    ap.add_argument("--moto")
    ap.add_argument("--admin-id")
    ap.add_argument("--admin-secret")
    ap.add_argument("--ecs-token", default="")
    ap.add_argument("--ecs-token-file", default="")
    ap.add_argument("--issued-file", default="")
    ap.add_argument("--parent-pid", type=int, default=0)
    args = ap.parse_args()
    if args.moto:
        import boto3
        iam = boto3.client("iam", endpoint_url=args.moto, region_name="us-east-1",
                           aws_access_key_id=args.admin_id, aws_secret_access_key=args.admin_secret)
        policy = json.dumps({"Version": "2012-10-17",
                             "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
        for u in USERS:
            try:
                iam.create_user(UserName=u)
            except iam.exceptions.EntityAlreadyExistsException:
                for k in iam.list_access_keys(UserName=u)["AccessKeyMetadata"]:
                    iam.delete_access_key(UserName=u, AccessKeyId=k["AccessKeyId"])
            iam.put_user_policy(UserName=u, PolicyName="s3", PolicyDocument=policy)
        threading.Thread(target=reaper, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True

    def watch_parent():
        while True:
            time.sleep(0.5)
            if args.parent_pid and not os.path.exists("/proc/%d" % args.parent_pid):
                os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    print("READY %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
