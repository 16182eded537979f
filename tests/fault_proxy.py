#!/usr/bin/env python3
"""fault_proxy.py: an HTTP/1.1 fault-injecting proxy on 127.0.0.1 in front of
an S3 endpoint (moto_server), for replite's [fault] integration tests and the
crash/outage benchmark. Python 3 standard library only.

    python3 fault_proxy.py --upstream 127.0.0.1:PORT [--port 0] [--control-port 0]

prints one line "READY <proxy_port> <control_port>" on stdout once listening.
Clients talk to the proxy exactly as to the upstream (path-style S3 URLs);
connections between client and proxy are kept alive, each client connection
has its own keep-alive upstream connection.

Control API (plain HTTP on the control port, answers text/JSON):
    GET /set?mode=MODE[&n=N][&t=SECONDS][&method=PUT][&path=SUBSTR]
    GET /stats      -> JSON {"requests":..,"faults":{kind:count},"mode":..}
    GET /reset      -> mode pass, counters kept
Modes (each applies to the next N matching requests, default N=1; a
request matches when its method equals `method` and its target contains
`path`, when given):
    pass            forward everything (default)
    slowdown        answer 503 SlowDown (S3 XML error), not forwarded
    error500        answer 500 InternalError, not forwarded
    reset           connection reset mid-body: a request with a body is read
                    half-way and the connection is reset (not forwarded); a
                    request without one is forwarded and the connection is
                    reset half-way through the response body
    stall           hold the request for `t` seconds, then forward it
    reset_after     forward the request (the write reaches the server), read
                    the response, then reset the client connection without it
    outage          refuse everything for `t` seconds (or until /set?mode=pass
                    when t is 0): new connections and requests on kept-alive
                    ones are reset at once
The proxy exits on SIGTERM/SIGINT, and when --parent-pid is given and that
process is gone.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import struct
import sys
import time
import urllib.parse


class State:
    def __init__(self):
        self.mode = "pass"
        self.remaining = 0
        self.t = 0.0
        self.method = ""
        self.path = ""
        self.outage_until = 0.0  # monotonic; 0 = none; inf = until cleared
        self.requests = 0
        self.faults = {}
        self.connections = 0

    def set(self, q):
        mode = q.get("mode", "pass")
        self.mode = mode
        self.remaining = int(q.get("n", "1"))
        self.t = float(q.get("t", "0"))
        self.method = q.get("method", "")
        self.path = q.get("path", "")
        self.outage_until = 0.0
        if mode == "outage":
            self.outage_until = time.monotonic() + self.t if self.t > 0 else float("inf")
        if mode == "pass":
            self.remaining = 0

    def in_outage(self):
        if self.outage_until and time.monotonic() < self.outage_until:
            return True
        if self.outage_until:
            self.outage_until = 0.0
            if self.mode == "outage":
                self.mode = "pass"
        return False

    def take(self, method, target):
        """The fault for this request ("pass" when none)."""
        if self.in_outage():
            self.count("outage")
            return "outage"
        if self.mode in ("pass", "outage") or self.remaining <= 0:
            return "pass"
        if self.method and self.method != method:
            return "pass"
        if self.path and self.path not in target:
            return "pass"
        self.remaining -= 1
        mode = self.mode
        if self.remaining <= 0:
            self.mode = "pass"
        self.count(mode)
        return mode

    def count(self, kind):
        self.faults[kind] = self.faults.get(kind, 0) + 1


STATE = State()


def hard_reset(writer):
    """Closes the connection with a TCP RST (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        writer.transport.abort()
    except Exception:
        pass


class Message:
    def __init__(self):
        self.start = b""
        self.headers = []  # (name, value) as str
        self.body = b""

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def remove(self, name):
        name = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name]

    def head_bytes(self):
        out = self.start + b"\r\n"
        for k, v in self.headers:
            out += ("%s: %s\r\n" % (k, v)).encode("latin-1")
        return out + b"\r\n"


async def read_head(reader):
    """Start line and headers; None at a clean EOF."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise
    lines = raw[:-4].split(b"\r\n")
    m = Message()
    m.start = lines[0]
    for line in lines[1:]:
        k, _, v = line.decode("latin-1").partition(":")
        m.headers.append((k.strip(), v.strip()))
    return m


async def read_chunked(reader):
    body = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return body
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def read_body(reader, m, length_known_only=False):
    te = (m.header("Transfer-Encoding") or "").lower()
    if "chunked" in te:
        m.body = await read_chunked(reader)
        m.remove("Transfer-Encoding")
        m.remove("Content-Length")
        m.headers.append(("Content-Length", str(len(m.body))))
        return
    cl = m.header("Content-Length")
    if cl is not None:
        m.body = await reader.readexactly(int(cl))
    elif not length_known_only:
        m.body = await reader.read()  # until close


class Upstream:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def ensure(self):
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:
                pass
        self.reader = self.writer = None

    async def roundtrip(self, req, method):
        for attempt in range(2):  # a stale kept-alive upstream connection: retry once on a new one
            await self.ensure()
            try:
                self.writer.write(req.head_bytes() + req.body)
                await self.writer.drain()
                resp = await read_head(self.reader)
                if resp is None:
                    raise ConnectionError("upstream closed")
                status = int(resp.start.split()[1])
                if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                    pass
                else:
                    await read_body(self.reader, resp)
                if (resp.header("Connection") or "").lower() == "close" or resp.header("Content-Length") is None:
                    self.close()
                resp.remove("Connection")
                if resp.header("Content-Length") is None and method != "HEAD":
                    resp.headers.append(("Content-Length", str(len(resp.body))))
                return resp
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                self.close()
                if attempt == 1:
                    raise


def error_response(status, reason, code, message):
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
            '<RequestId>fault-proxy</RequestId></Error>' % (code, message)).encode()
    m = Message()
    m.start = ("HTTP/1.1 %d %s" % (status, reason)).encode()
    m.headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body))),
                 ("x-amz-request-id", "fault-proxy")]
    m.body = body
    return m


async def handle_client(reader, writer, upstream_addr):
    STATE.connections += 1
    up = Upstream(*upstream_addr)
    try:
        while True:
            if STATE.in_outage():
                STATE.count("outage")
                hard_reset(writer)
                return
            req = await read_head(reader)
            if req is None:
                return
            STATE.requests += 1
            parts = req.start.decode("latin-1").split()
            method, target = parts[0], parts[1]
            fault = STATE.take(method, target)
            if fault == "outage":
                hard_reset(writer)
                return
            has_body = req.header("Content-Length") not in (None, "0") or req.header("Transfer-Encoding")
            if fault == "reset" and has_body and req.header("Content-Length"):
                # Read half of the body, then reset: the server never sees it.
                if (req.header("Expect") or "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    await writer.drain()
                half = int(req.header("Content-Length")) // 2
                if half:
                    await reader.readexactly(half)
                hard_reset(writer)
                return
            if (req.header("Expect") or "").lower() == "100-continue":
                if fault in ("slowdown", "error500"):
                    # Answer before the body, as a real server would; the
                    # client then either sends no body or we must drain it.
                    pass
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await writer.drain()
                req.remove("Expect")
            await read_body(reader, req, length_known_only=True)
            client_close = (req.header("Connection") or "").lower() == "close"
            if fault == "slowdown":
                resp = error_response(503, "Slow Down", "SlowDown", "Please reduce your request rate.")
            elif fault == "error500":
                resp = error_response(500, "Internal Server Error", "InternalError",
                                      "We encountered an internal error. Please try again.")
            else:
                if fault == "stall":
                    await asyncio.sleep(STATE.t)
                try:
                    resp = await up.roundtrip(req, method)
                except Exception:
                    hard_reset(writer)
                    return
                if fault == "reset_after":
                    hard_reset(writer)
                    return
                if fault == "reset":
                    # Headers and half the body, then a reset.
                    writer.write(resp.head_bytes() + resp.body[: len(resp.body) // 2])
                    await writer.drain()
                    hard_reset(writer)
                    return
            writer.write(resp.head_bytes() + (b"" if method == "HEAD" else resp.body))
            await writer.drain()
            if client_close:
                writer.close()
                return
    except (ConnectionError, asyncio.IncompleteReadError, OSError, ValueError, IndexError):
        hard_reset(writer)
    finally:
        up.close()


async def handle_control(reader, writer):
    try:
        req = await read_head(reader)
        if req is None:
            return
        target = req.start.decode("latin-1").split()[1]
        u = urllib.parse.urlsplit(target)
        q = dict(urllib.parse.parse_qsl(u.query))
        if u.path == "/set":
            STATE.set(q)
            body = b"ok\n"
        elif u.path == "/reset":
            STATE.set({"mode": "pass"})
            body = b"ok\n"
        elif u.path == "/stats":
            STATE.in_outage()
            body = json.dumps({"requests": STATE.requests, "faults": STATE.faults, "mode": STATE.mode,
                               "remaining": STATE.remaining, "connections": STATE.connections}).encode() + b"\n"
        else:
            body = b"unknown\n"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                     % len(body) + body)
        await writer.drain()
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the S3 endpoint")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--parent-pid", type=int, default=0)
    args = ap.parse_args()
    host, _, port = args.upstream.rpartition(":")
    upstream = (host or "127.0.0.1", int(port))
    server = await asyncio.start_server(lambda r, w: handle_client(r, w, upstream), "127.0.0.1", args.port)
    control = await asyncio.start_server(handle_control, "127.0.0.1", args.control_port)
    pport = server.sockets[0].getsockname()[1]
    cport = control.sockets[0].getsockname()[1]
    print("READY %d %d" % (pport, cport), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def watch_parent():
        while not stop.is_set():
            if args.parent_pid and not os.path.exists("/proc/%d" % args.parent_pid):
                stop.set()
            await asyncio.sleep(1)

    asyncio.ensure_future(watch_parent())
    await stop.wait()
    server.close()
    control.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    sys.exit(0)
