#!/usr/bin/env python3
"""idlerace.py - a client whose next request crosses corral's idle close,
for tests/integration/check_process.c. Python 3 standard library only;
the TLS and HTTP/2 helpers are flood.py's.

  idlerace.py h1 PORT IDLE_MS
      HTTP/1.1 keep-alive: one request, then the next one's TLS record
      goes out in two halves, the first IDLE_MS - 300 ms after the first
      answer and the second IDLE_MS + 300 ms after it, so that the idle
      timer fires while the request is half on its way.

  idlerace.py h2 PORT IDLE_MS
      HTTP/2: one request, then nothing read for IDLE_MS + 300 ms (corral's
      idle close is sent meanwhile), then the next request is sent before
      reading what came: it crossed the close on the wire.

Prints "idlerace PROTO status=N" (N: the second request's status, 0 when it
got none) and exits 0 when it was 200, else 1 with "error: ..." lines.
Only ever connects to 127.0.0.1; every wait is bounded.
"""
import os
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flood import (ACK, DATA, END_HEADERS, END_STREAM, GOAWAY, H2, HEADERS, HOST,  # noqa: E402
                   IO_TIMEOUT, PADDED, PING, PRIORITY, RST_STREAM, SETTINGS, SNI, WINDOW_UPDATE,
                   context, frame, get_block, parse_frames)

MARGIN = 0.3  # seconds either side of the idle timeout


class BioTLS:
    """TLS over a plain socket through memory BIOs: the records can be
    sent in pieces."""

    def __init__(self, port):
        self.s = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context("http/1.1").wrap_bio(self.inc, self.out, server_hostname=SNI)
        end = time.monotonic() + IO_TIMEOUT
        while time.monotonic() < end:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self.fill()
        self.flush()

    def flush(self):
        b = self.out.read()
        if b:
            self.s.sendall(b)

    def fill(self):
        b = self.s.recv(65536)
        if not b:
            raise IOError("the server closed the connection")
        self.inc.write(b)

    def records(self, data):
        """data as TLS records, not sent."""
        self.flush()
        self.tls.write(data)
        return self.out.read()

    def response(self):
        """One whole answer (Content-Length framed): its status."""
        buf, end = b"", time.monotonic() + IO_TIMEOUT
        while time.monotonic() < end:
            try:
                b = self.tls.read(65536)
            except ssl.SSLWantReadError:
                self.fill()
                continue
            except ssl.SSLZeroReturnError:
                b = b""
            if not b:
                raise IOError("the server closed the connection (close_notify)")
            buf += b
            head, sep, body = buf.partition(b"\r\n\r\n")
            if not sep:
                continue
            lines = head.decode("latin-1").split("\r\n")
            clen = 0
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                if k.strip().lower() == "content-length":
                    clen = int(v)
            if len(body) >= clen:
                return int(lines[0].split()[1])
        raise IOError("no whole answer in %.1f s: %r" % (IO_TIMEOUT, buf[:300]))


def req(path):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, SNI)).encode()


def h1(port, idle):
    c = BioTLS(port)
    c.s.sendall(c.records(req("/first")))
    if c.response() != 200:
        raise IOError("the first request failed")
    t0 = time.monotonic()
    rec = c.records(req("/second"))
    time.sleep(max(0.0, idle - MARGIN))
    c.s.sendall(rec[:len(rec) // 2])
    time.sleep(max(0.0, t0 + idle + MARGIN - time.monotonic()))
    try:
        c.s.sendall(rec[len(rec) // 2:])
    except OSError as e:
        raise IOError("sending the rest of the request: %s" % e)
    return c.response()


def h2(port, idle):
    c = H2(context("h2"), port)
    if c.get("/first") != 200:
        raise IOError("the first request failed")
    time.sleep(idle + MARGIN)
    sid = c.sid
    try:
        c.s.sendall(frame(HEADERS, END_STREAM | END_HEADERS, sid, get_block("/second")))
    except OSError as e:
        raise IOError("sending the request: %s" % e)
    status, buf, end = 0, c.buf, time.monotonic() + IO_TIMEOUT
    while time.monotonic() < end:
        b = c.s.recv(65536)
        if not b:
            raise IOError("the server closed the connection, the request unanswered")
        frames, buf = parse_frames(buf + b)
        out, done = b"", False
        for t, fl, fsid, p in frames:
            if t == SETTINGS and not fl & ACK:
                out += frame(SETTINGS, ACK, 0)
            elif t == PING and not fl & ACK:
                out += frame(PING, ACK, 0, p)
            elif t == GOAWAY:
                last = struct.unpack(">I", p[:4])[0] & 0x7FFFFFFF
                if last < sid:
                    raise IOError("GOAWAY with last stream %d: stream %d dropped" % (last, sid))
            elif fsid != sid:
                continue
            elif t == RST_STREAM:
                raise IOError("RST_STREAM %d" % struct.unpack(">I", p[:4])[0])
            elif t == HEADERS:
                off = (1 if fl & PADDED else 0) + (5 if fl & PRIORITY else 0)
                status = 200 if p[off:off + 1] == b"\x88" else -1
                done = done or bool(fl & END_STREAM)
            elif t == DATA:
                if p:
                    out += frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", len(p)))
                done = done or bool(fl & END_STREAM)
        if out:
            c.s.sendall(out)
        if done:
            return status
    raise IOError("no answer in %.1f s" % IO_TIMEOUT)


def main(argv):
    if len(argv) != 4 or argv[1] not in ("h1", "h2"):
        sys.stderr.write(__doc__)
        return 2
    proto, port, idle = argv[1], int(argv[2]), int(argv[3]) / 1000.0
    status = 0
    try:
        status = (h1 if proto == "h1" else h2)(port, idle)
    except (OSError, IOError, ssl.SSLError) as e:
        print("error: %s" % e)
    print("idlerace %s status=%d" % (proto, status))
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
