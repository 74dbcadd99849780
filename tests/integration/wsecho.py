#!/usr/bin/python3
"""wsecho.py - drives testup's WebSocket echo over HTTP/1.1 for
check_wsecho.c: python3-websockets (Debian's; run it with /usr/bin/python3)
as the real client, and a raw TLS socket for what a well-behaved client
never sends.

  wsecho.py echo|refuse PORT CERTS

Connects to 127.0.0.1:PORT (TLS, SNI lb.test, verified against CERTS/ca.crt,
client certificate CERTS/client.crt).
  echo    websockets: subprotocols ["chat", "superchat"] (testup must pick
          "chat"), text, a 300-byte (16-bit length) and a 70000-byte
          (64-bit length) binary message echoed, a ping answered, close
          1000. Raw: the 101's Sec-WebSocket-Accept recomputed here; a
          fragmented text message echoed fragment by fragment; a server
          ping awaited (testup --ws-ping); close 1001 answered with 1001;
          an unmasked frame answered with close 1002.
  refuse  websockets' handshake must fail with the HTTP status testup
          answered (testup --ws-refuse); prints "status N".
Prints "ok STEP" per step; exit 0 when all passed, 1 otherwise. Every wait
is bounded (5 s each).
"""
import asyncio
import base64
import hashlib
import os
import socket
import ssl
import struct
import sys

import websockets

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
T = 5.0


def ctx(certs):
    c = ssl.create_default_context(cafile=os.path.join(certs, "ca.crt"))
    c.load_cert_chain(os.path.join(certs, "client.crt"), os.path.join(certs, "client.key"))
    c.set_alpn_protocols(["http/1.1"])
    return c


def check(cond, what):
    if not cond:
        print("FAIL " + what, flush=True)
        sys.exit(1)
    print("ok " + what, flush=True)


async def ws_client(port, certs):
    uri = "wss://127.0.0.1:%d/chat/room" % port
    async with websockets.connect(uri, ssl=ctx(certs), server_hostname="lb.test",
                                  subprotocols=["chat", "superchat"], open_timeout=T,
                                  close_timeout=T) as ws:
        check(ws.subprotocol == "chat", "subprotocol")
        await ws.send("hello, corral")
        check(await asyncio.wait_for(ws.recv(), T) == "hello, corral", "text echo")
        for n in (300, 70000):
            data = os.urandom(n)
            await ws.send(data)
            check(await asyncio.wait_for(ws.recv(), T) == data, "binary echo %d" % n)
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, T)
        check(True, "pong")
        await ws.close(1000, "bye")
    check(ws.close_code == 1000, "close 1000 echoed")


def raw_open(port, certs):
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    s = ctx(certs).wrap_socket(s, server_hostname="lb.test")
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /raw HTTP/1.1\r\nHost: lb.test\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 8192:
        got = s.recv(1)
        if not got:
            break
        head += got
    want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    lines = head.decode("latin-1").split("\r\n")
    check(lines[0].startswith("HTTP/1.1 101 "), "raw 101")
    check("sec-websocket-accept: " + want in lines, "raw accept")
    return s


def send(s, opcode, payload, fin=True, masked=True):
    n = len(payload)
    b1 = 0x80 if masked else 0
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([b1 | n])
    else:
        head += bytes([b1 | 126]) + struct.pack("!H", n)
    if masked:
        m = os.urandom(4)
        payload = m + bytes(c ^ m[i & 3] for i, c in enumerate(payload))
    s.sendall(head + payload)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        got = s.recv(n - len(buf))
        if not got:
            raise EOFError
        buf += got
    return buf


def recv_frame(s):
    b0, b1 = recv_exact(s, 2)
    if b1 & 0x80:
        raise ValueError("masked server frame")
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(s, 8))[0]
    return b0 & 0x0F, bool(b0 & 0x80), recv_exact(s, n)


def eof(s):
    try:
        return s.recv(1) == b""
    except (ConnectionError, ssl.SSLError):
        return True


def raw(port, certs):
    s = raw_open(port, certs)
    send(s, 1, b"frag", fin=False)
    send(s, 0, b"mented", fin=True)
    frames = []
    while len(frames) < 2:
        f = recv_frame(s)
        if f[0] != 9:
            frames.append(f)
    check(frames == [(1, False, b"frag"), (0, True, b"mented")], "fragments echoed")
    for _ in range(100):  # testup --ws-ping: one comes within a few periods
        op, fin, payload = recv_frame(s)
        if op == 9:
            break
    check(op == 9 and len(payload) == 8, "server ping")
    send(s, 10, payload)
    send(s, 8, struct.pack("!H", 1001) + b"going away")
    op, fin, payload = recv_frame(s)
    while op == 9:
        op, fin, payload = recv_frame(s)
    check(op == 8 and payload[:2] == struct.pack("!H", 1001), "close 1001 echoed")
    check(eof(s), "closed after close")
    s.close()

    s = raw_open(port, certs)
    send(s, 1, b"naked", masked=False)
    op, fin, payload = recv_frame(s)
    while op == 9:
        op, fin, payload = recv_frame(s)
    check(op == 8 and payload[:2] == struct.pack("!H", 1002), "unmasked: close 1002")
    check(eof(s), "closed after 1002")
    s.close()


async def refuse(port, certs):
    try:
        async with websockets.connect("wss://127.0.0.1:%d/ws" % port, ssl=ctx(certs),
                                      server_hostname="lb.test", open_timeout=T):
            check(False, "refused")
    except websockets.exceptions.InvalidStatusCode as e:
        print("status %d" % e.status_code, flush=True)
        check(True, "refused")


def main():
    mode, port, certs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "echo":
        asyncio.run(ws_client(port, certs))
        raw(port, certs)
    elif mode == "refuse":
        asyncio.run(refuse(port, certs))
    else:
        sys.exit("usage: wsecho.py echo|refuse PORT CERTS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
