#!/usr/bin/env python3
"""h2bulk.py - an HTTP/2 client that reads normally while many large
downloads are in flight, for check_h2abuse.c. Python 3 standard library
only.

  h2bulk.py PORT STREAMS SIZE LATE

Connects to 127.0.0.1:PORT (TLS, ALPN h2, SNI edge.test) with the default
64 KB windows, asks for STREAMS downloads of /bytes/SIZE, reads everything
and gives every DATA frame's bytes back at once (a WINDOW_UPDATE for its
stream and one for the connection), as a browser does. Once DATA has come
on every one of them, it asks for LATE more (/bytes/10), one after another,
each once 64 KB more have come. Prints one line and exits 0 when every
stream ended:
  ok N refused R other O bytes B
N streams answered 200 (their header block opens with the static
:status 200, 0x88) and ended, R reset with REFUSED_STREAM, O anything
else (another status or reset), B bytes of DATA. Exit 1 after 30 s or on
a connection error, 2 when it could not connect. Only ever connects to
127.0.0.1; every loop is bounded in count and time.
"""
import socket
import ssl
import struct
import sys
import time

HOST, SNI = "127.0.0.1", "edge.test"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
REFUSED_STREAM = 7


def frame(ftype, flags, sid, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) +
            struct.pack(">I", sid & 0x7FFFFFFF) + payload)


def lit(idx, value):
    """A literal field, its name from the static table, no Huffman."""
    v = value.encode()
    return bytes([idx, len(v)]) + v


def get(sid, path):
    block = b"\x82\x87" + lit(4, path) + lit(1, SNI)
    return frame(HEADERS, END_STREAM | END_HEADERS, sid, block)


def main(argv):
    port, streams, size, late = int(argv[1]), int(argv[2]), int(argv[3]), int(argv[4])
    raw = socket.create_connection((HOST, port), timeout=5.0)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the tests of TLS are elsewhere
    ctx.set_alpn_protocols(["h2"])
    try:
        s = ctx.wrap_socket(raw, server_hostname=SNI)
    except OSError as e:
        sys.stderr.write("h2bulk: %s\n" % e)
        return 2
    out = PREFACE + frame(SETTINGS, 0, 0)
    sid = 1
    for _ in range(streams):
        out += get(sid, "/bytes/%d" % size)
        sid += 2
    s.sendall(out)
    seen, ended, ok, refused, other, total = set(), set(), 0, 0, 0, 0
    statuses = {}
    buf, sent_late, next_late_at = b"", 0, None
    end = time.monotonic() + 30
    while len(ended) < streams + late and time.monotonic() < end:
        chunk = s.recv(65536)
        if not chunk:
            sys.stderr.write("h2bulk: the server closed the connection\n")
            break
        buf += chunk
        out = b""
        while len(buf) >= 9:
            n = struct.unpack(">I", b"\0" + buf[:3])[0]
            if len(buf) < 9 + n:
                break
            ftype, flags = buf[3], buf[4]
            fsid = struct.unpack(">I", buf[5:9])[0] & 0x7FFFFFFF
            payload, buf = buf[9:9 + n], buf[9 + n:]
            if ftype == SETTINGS and not flags & ACK:
                out += frame(SETTINGS, ACK, 0)
            elif ftype == PING and not flags & ACK:
                out += frame(PING, ACK, 0, payload)
            elif ftype == GOAWAY:
                sys.stderr.write("h2bulk: GOAWAY %r\n" % payload[:8])
            elif ftype == HEADERS and fsid not in statuses:
                statuses[fsid] = payload[:1] == b"\x88"
            elif ftype == DATA:
                total += n
                seen.add(fsid)
                if n:
                    inc = struct.pack(">I", n)
                    out += frame(WINDOW_UPDATE, 0, 0, inc)
                    if not flags & END_STREAM:
                        out += frame(WINDOW_UPDATE, 0, fsid, inc)
            elif ftype == RST_STREAM and fsid not in ended:
                ended.add(fsid)
                if struct.unpack(">I", payload[:4])[0] == REFUSED_STREAM:
                    refused += 1
                else:
                    other += 1
            if ftype in (DATA, HEADERS) and flags & END_STREAM and fsid not in ended:
                ended.add(fsid)
                if statuses.get(fsid):
                    ok += 1
                else:
                    other += 1
        # the late requests: once every download is under way, then one
        # for every 64 KB more
        if sent_late < late and len(seen) >= streams and (
                next_late_at is None or total >= next_late_at or
                len(ended) >= streams + sent_late):
            out += get(sid, "/bytes/10")
            sid += 2
            sent_late += 1
            next_late_at = total + 65536
        if out:
            s.sendall(out)
    print("ok %d refused %d other %d bytes %d" % (ok, refused, other, total))
    sys.stdout.flush()
    return 0 if len(ended) == streams + late else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
