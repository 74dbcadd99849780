#!/usr/bin/env python3
"""proxyclient.py - a client behind an L4 balancer, for
tests/integration/check_edge.c. Python 3 standard library only.

  proxyclient.py PORT CAFILE HEADER PATH

Connects to 127.0.0.1:PORT, writes the PROXY protocol header HEADER, then
speaks TLS (server name edge.test, verified with CAFILE) over the same socket
and sends GET PATH over HTTP/1.1. HEADER is one of:

  v1            PROXY TCP4 203.0.113.7 192.0.2.1 4444 443
  v1-unknown    PROXY UNKNOWN
  v2            PROXY over TCP6, client [2001:db8::5]:5555, a UNIQUE_ID TLV
                "vpce-0abc123" and a NOOP TLV, written in three pieces
  v2-local      LOCAL (the balancer's health check), no addresses
  v2-probe      LOCAL, then the connection is closed (a balancer's TCP
                health check that speaks PROXY): prints "probe closed"
  garbage       16 bytes that are no PROXY header
  v1-no-crlf    a v1 line ended by LF alone

Prints "status NNN" and the response body, or "refused: WHY" when the
server closed the connection before answering. Exit 0 either way (the test
judges), 2 on a usage error. Every step has a 5 s timeout."""
import socket
import ssl
import struct
import sys
import time

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(cmd, fam, addrs, tlvs):
    body = addrs + b"".join(struct.pack("!BH", t, len(v)) + v for t, v in tlvs)
    return SIG + bytes([0x20 | cmd, fam]) + struct.pack("!H", len(body)) + body


def header(kind):
    if kind == "v1":
        return [b"PROXY TCP4 203.0.113.7 192.0.2.1 4444 443\r\n"]
    if kind == "v1-unknown":
        return [b"PROXY UNKNOWN\r\n"]
    if kind == "v1-no-crlf":
        return [b"PROXY TCP4 203.0.113.7 192.0.2.1 4444 443\n"]
    if kind == "garbage":
        return [b"\x16\x03\x01\x02\x00GARBAGEGARB"]
    if kind == "v2":
        addrs = (socket.inet_pton(socket.AF_INET6, "2001:db8::5") +
                 socket.inet_pton(socket.AF_INET6, "2001:db8::1") + struct.pack("!HH", 5555, 443))
        h = v2(1, 0x21, addrs, [(0x04, b"\x00\x00"), (0x05, b"vpce-0abc123")])
        return [h[:7], h[7:20], h[20:]]  # a balancer's header may arrive in pieces
    if kind == "v2-local":
        return [v2(0, 0x00, b"", [])]
    raise SystemExit(2)


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    port, cafile, kind, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        for piece in header("v2-local" if kind == "v2-probe" else kind):
            sock.sendall(piece)
            time.sleep(0.05)
        if kind == "v2-probe":
            sock.close()
            print("probe closed")
            return 0
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.set_alpn_protocols(["http/1.1"])
        tls = ctx.wrap_socket(sock, server_hostname="edge.test")
        req = "GET %s HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n" % path
        tls.sendall(req.encode())
        data = b""
        while len(data) < 1 << 20:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    except (OSError, ssl.SSLError) as e:
        print("refused: %s" % e)
        return 0
    if not data:
        print("refused: closed without an answer")
        return 0
    head, _, body = data.partition(b"\r\n\r\n")
    print("status %s" % head.split(b" ")[1].decode())
    print(body.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
