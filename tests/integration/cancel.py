#!/usr/bin/env python3
"""cancel.py - clients that give up, for tests/integration/check_cancel.c.
Python 3 standard library only (the frame helpers are flood.py's).

  cancel.py PORT SECONDS [conns=N] [rate=R] [after_ms=MS] [open=N] [path=P]
      N HTTP/2 connections (2) each send GET P (/) at R requests a second
      (400) and reset each stream (RST_STREAM CANCEL) MS ms (5) after
      sending it, unless its response has ended first, with at most `open`
      (64) streams of a connection open at once. Prints "cancelling" once
      the connections are up and at the end one line:
        cancel sent=N reset=N answered=N conns=N errors=N

Only ever connects to 127.0.0.1. Every loop is bounded in time and count.
"""
import select
import signal
import ssl
import struct
import sys
import time

import flood
from flood import (END_HEADERS, END_STREAM, HEADERS, DATA, RST_STREAM, SETTINGS, PING, GOAWAY,
                   ACK, WINDOW_UPDATE, frame, parse_frames, get_block)

stop = False


def on_term(signum, frm):
    global stop
    stop = True


class Conn:
    def __init__(self, ctx, port):
        self.s = flood.tls_connect(ctx, port)
        if self.s.selected_alpn_protocol() != "h2":
            raise IOError("ALPN chose %r, not h2" % self.s.selected_alpn_protocol())
        self.s.setblocking(False)
        self.out = bytearray(flood.PREFACE + flood.settings([(2, 0)]) +
                             frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30)))
        self.inbuf = b""
        self.sid = 1
        self.open = {}  # sid -> when sent
        self.dead = False

    def flush(self):
        while self.out and not self.dead:
            try:
                k = self.s.send(self.out[:16384])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                return
            except (ConnectionError, ssl.SSLError, OSError):
                self.dead = True
                return
            del self.out[:k]

    def read(self, counts):
        for _ in range(64):
            b = flood.nb_recv(self.s)
            if b is None:
                return
            if not b:
                self.dead = True
                return
            frames, self.inbuf = parse_frames(self.inbuf + b)
            for t, fl, sid, p in frames:
                if t == SETTINGS and not fl & ACK:
                    self.out += frame(SETTINGS, ACK, 0)
                elif t == PING and not fl & ACK:
                    self.out += frame(PING, ACK, 0, p)
                elif t == GOAWAY:
                    self.dead = True
                    return
                elif t == RST_STREAM:
                    self.open.pop(sid, None)
                elif t in (HEADERS, DATA) and fl & END_STREAM:
                    if self.open.pop(sid, None) is not None:
                        counts["answered"] += 1


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    signal.signal(signal.SIGTERM, on_term)
    port, seconds = int(argv[1]), float(argv[2])
    opt = dict(a.split("=", 1) for a in argv[3:])
    n, rate = int(opt.get("conns", 2)), float(opt.get("rate", 400))
    after, maxopen = float(opt.get("after_ms", 5)) / 1000.0, int(opt.get("open", 64))
    block = get_block(opt.get("path", "/"))
    counts = {"sent": 0, "reset": 0, "answered": 0, "conns": 0, "errors": 0}
    ctx = flood.context("h2")
    conns = []
    for _ in range(n):
        try:
            conns.append(Conn(ctx, port))
            counts["conns"] += 1
        except (OSError, IOError, ssl.SSLError):
            counts["errors"] += 1
    print("cancelling", flush=True)
    t0 = last = time.monotonic()
    end = t0 + seconds
    credit = 0.0
    while not stop and time.monotonic() < end and any(not c.dead for c in conns):
        t = time.monotonic()
        credit = min(credit + (t - last) * rate, rate * 0.05)
        last = t
        for c in conns:
            if c.dead:
                continue
            for sid, at in list(c.open.items()):
                if t - at >= after:
                    del c.open[sid]
                    c.out += frame(RST_STREAM, 0, sid, struct.pack(">I", 8))  # CANCEL
                    counts["reset"] += 1
        while credit >= 1.0:
            credit -= 1.0
            live = [c for c in conns if not c.dead and len(c.open) < maxopen and c.sid < 1 << 30]
            if not live:
                break
            c = live[counts["sent"] % len(live)]
            sid, c.sid = c.sid, c.sid + 2
            c.open[sid] = time.monotonic()
            c.out += frame(HEADERS, END_STREAM | END_HEADERS, sid, block)
            counts["sent"] += 1
        for c in conns:
            c.flush()
            c.read(counts)
        fds = [c.s for c in conns if not c.dead]
        if fds:
            select.select(fds, [c.s for c in conns if c.out and not c.dead], [], 0.001)
    errors = counts["errors"] + sum(1 for c in conns if c.dead)
    print("cancel sent=%d reset=%d answered=%d conns=%d errors=%d" %
          (counts["sent"], counts["reset"], counts["answered"], counts["conns"], errors),
          flush=True)
    for c in conns:
        c.s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
