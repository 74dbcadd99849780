#!/usr/bin/python3
"""wsclient.py - a WebSocket client over HTTP/1.1 (python3-websockets, Debian's:
run it with /usr/bin/python3) for check_websocket, through corral.

  wsclient.py PORT MODE [ARG] [--path P] [--timeout S]

Connects to wss://127.0.0.1:PORT/PATH (certificate not verified: corral's
test certificate names another host). MODE:

  echo            offers subprotocols chat.v1 and chat.v0 and prints the
                  one chosen; a text, a binary and a 1 MB message, each
                  checked against its echo; then a close 1000
  hold SECONDS    opens, prints {"open": true} at once, keeps the tunnel
                  (answering pings) for SECONDS or until the server closes,
                  then prints how it ended
  status          the status of the handshake's answer (101 or a refusal)
  noread SECONDS  raw socket: the handshake, then masked binary frames as
                  fast as the socket takes them for SECONDS, never reading
                  the echoes; prints the bytes it got out
  wait-close S    opens, prints {"open": true}, waits up to S seconds for
                  the server's close frame and prints its code
  abrupt CODE     raw socket: the handshake, a close frame with CODE, and
                  the socket closed at once (no closing handshake)
  expect          raw socket: the handshake with Expect: 100-continue;
                  prints {"open": true} when the first answer is the 101,
                  else its status line

Prints one JSON line per event (flushed); exit 0 when the mode's checks
held, 1 otherwise, 2 when it could not connect. Every wait is bounded by
--timeout (default 20 s).
"""
import argparse
import asyncio
import base64
import json
import os
import socket
import ssl
import struct
import sys
import time

import websockets


def out(**kw):
    print(json.dumps(kw), flush=True)


def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    c.set_alpn_protocols(["http/1.1"])
    return c


async def connect(a, subprotocols=None):
    return await websockets.connect(f"wss://127.0.0.1:{a.port}{a.path}", ssl=ctx(),
                                    max_size=None, open_timeout=a.timeout,
                                    ping_interval=None, close_timeout=5,
                                    subprotocols=subprotocols)


async def echo(a):
    ws = await connect(a, ["chat.v1", "chat.v0"])
    out(subprotocol=ws.subprotocol)
    ok = True
    for msg in ["hello tunnel", bytes(range(256)) * 4, os.urandom(1 << 20)]:
        await ws.send(msg)
        back = await asyncio.wait_for(ws.recv(), a.timeout)
        same = back == msg
        ok &= same
        out(sent=len(msg), kind=type(msg).__name__, echoed=same)
    await ws.close(1000)
    out(close_code=ws.close_code)
    return 0 if ok else 1


async def hold(a):
    ws = await connect(a)
    out(open=True)
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(ws.wait_closed(), float(a.arg))
        out(closed_by="server", code=ws.close_code, secs=round(time.monotonic() - t0, 3))
    except asyncio.TimeoutError:
        await ws.close(1000)
        out(closed_by="client", code=ws.close_code, secs=round(time.monotonic() - t0, 3))
    return 0


async def status(a):
    try:
        ws = await connect(a)
    except websockets.exceptions.InvalidStatusCode as e:
        out(status=e.status_code, retry_after=e.headers.get("retry-after"))
        return 0
    out(status=101)
    await ws.close(1000)
    return 0


async def wait_close(a):
    ws = await connect(a)
    out(open=True)
    try:
        await asyncio.wait_for(ws.recv(), float(a.arg))
    except websockets.exceptions.ConnectionClosed as e:
        out(close_code=e.rcvd.code if e.rcvd else None)
        return 0
    except asyncio.TimeoutError:
        out(close_code=None)
    return 1


def raw_open(a, extra=""):
    """A raw TLS socket through the handshake (its 101), or None."""
    s = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    s = ctx().wrap_socket(s, server_hostname="edge.test")
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET {a.path} HTTP/1.1\r\nHost: edge.test\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
              f"Sec-WebSocket-Version: 13\r\n{extra}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(1)
        if not b:
            return None
        head += b
    if not head.startswith(b"HTTP/1.1 101"):
        out(status=head.split(b"\r\n")[0].decode())
        return None
    out(open=True)
    return s


def masked(opcode, payload):
    mask = os.urandom(4)
    return (bytes([0x80 | opcode, 0x80 | len(payload)]) + mask +
            bytes(b ^ mask[i & 3] for i, b in enumerate(payload)))


def abrupt(a):
    """A close frame with code ARG, and the socket closed at once, without
    waiting for the answer."""
    s = raw_open(a)
    if s is None:
        return 1
    s.sendall(masked(0x8, struct.pack("!H", int(a.arg))))
    s.close()
    out(sent_close=int(a.arg))
    return 0


def expect(a):
    """The handshake with Expect: 100-continue: the 101 comes first (a
    GET upgrade has no body to continue)."""
    s = raw_open(a, "Expect: 100-continue\r\n")
    if s is None:
        return 1
    s.sendall(masked(0x8, struct.pack("!H", 1000)))
    s.close()
    return 0


def noread(a):
    s = raw_open(a)
    if s is None:
        return 1
    payload = os.urandom(16384)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    frame = bytes([0x82, 0x80 | 126]) + struct.pack("!H", len(payload)) + mask + masked
    s.settimeout(0.5)
    sent, end = 0, time.monotonic() + float(a.arg)
    while time.monotonic() < end:
        try:
            sent += s.send(frame)  # a partial frame only at the very end
        except (socket.timeout, ssl.SSLWantWriteError):
            pass
    out(sent=sent)
    # hold the socket (unread) until the test has measured, then go
    time.sleep(float(a.extra or 0))
    s.close()
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("mode")
    p.add_argument("arg", nargs="?")
    p.add_argument("extra", nargs="?")
    p.add_argument("--path", default="/ws")
    p.add_argument("--timeout", type=float, default=20)
    a = p.parse_args()
    if a.mode == "noread":
        return noread(a)
    if a.mode == "abrupt":
        return abrupt(a)
    if a.mode == "expect":
        return expect(a)
    f = {"echo": echo, "hold": hold, "status": status, "wait-close": wait_close}[a.mode]
    try:
        return asyncio.run(asyncio.wait_for(f(a), a.timeout + 5))
    except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as e:
        out(error=repr(e))
        return 2


if __name__ == "__main__":
    sys.exit(main())
