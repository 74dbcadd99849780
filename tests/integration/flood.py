#!/usr/bin/env python3
"""flood.py - hostile clients, and a normal one that measures, for
tests/integration/check_floods.c. Python 3 standard library only.

  flood.py probe PORT RATE SECONDS [SAMPLES]
      The normal client: RATE requests a second for SECONDS, open loop (each
      request has a scheduled time and its latency is counted from it, so a
      server that stalls delays every request scheduled meanwhile, not just
      the one in flight). GET / in turn on a new HTTP/1.1 connection (a full
      TLS handshake), on a kept-alive HTTP/1.1 connection and, twice, on a
      kept-alive HTTP/2 connection. Prints one line:
        probe n=N ok=N fail=N p50=MS p90=MS p99=MS max=MS new_p99=MS ka_p99=MS
      then, when a request failed, "error: ..." lines (the first few). With
      SAMPLES, every request's "start_s kind ms status" goes to that file.

  flood.py KIND PORT SECONDS [key=value ...]
      A flood of KIND for at most SECONDS (or until SIGTERM), at a bounded
      rate and with a bounded number of connections. It prints "flooding"
      once its connections are in place, and at the end one line of
      key=value counts:
        flood kind=K conns=N frames=N closed=N goaway=N rst=N resp=N
              max_hold_ms=MS overdue=N statuses=CODE:N,... errors=N
      conns: connections opened; frames: the units of the flood sent (bytes
      for slowloris, frames for HTTP/2, requests for zero-window); closed:
      connections the server ended (EOF, reset or GOAWAY); max_hold_ms: the
      longest a connection stayed open before the server ended it, counting
      those still open at the end (from its handshake); overdue: connections older than hold=MS
      (key) that the server had not ended.

      slowloris   conns=N: HTTP/1.1 connections sending a request head one
                  byte a second; delay=MS: the first byte only MS after
                  the handshake
      silent      conns=N: TCP connections that never send a byte
      halfopen    conns=N rate=R: TLS handshakes left unfinished, R new ones
                  a second, at most N at once: every other one sends a whole
                  ClientHello, the others its first 16 bytes
      reset       conns=N rate=R: HTTP/2 rapid reset, R HEADERS+RST_STREAM
                  a second on each connection
      continuation conns=N rate=R: HEADERS without END_HEADERS, then R
                  CONTINUATION frames a second, each a 40-byte header field
      ping        conns=N rate=R: R PINGs a second on each connection
      settings    conns=N rate=R: R SETTINGS frames (6 values each) a second
      zerowindow  conns=N streams=S: SETTINGS_INITIAL_WINDOW_SIZE=0, then S
                  requests for /bytes/4000000 on each connection, never any
                  WINDOW_UPDATE

Each HTTP/2 flood reads (and throws away) what the server sends, answers its
SETTINGS, and opens a new connection when the server ends one (at most 2 a
second, and at most reconnect=N (key) in all): a flood of TLS handshakes is
another test's (check_limits), these measure what each connection costs. It
never lets more than 256 KB wait to be sent on a connection: a server that
stops reading slows the flood instead of growing it.

A flood runs at nice 5: on a shared machine the test measures what the flood
costs corral, not how much CPU the flooding process takes from it (a real
attacker's CPU is elsewhere).

Only ever connects to 127.0.0.1. Every loop is bounded in time and count.
"""
import os
import select
import selectors
import signal
import socket
import ssl
import struct
import sys
import time

HOST = "127.0.0.1"
SNI = "edge.test"
IO_TIMEOUT = 3.0  # a blocking connect, handshake or request: longer is a failure
MAX_PENDING = 256 * 1024  # bytes a flood lets wait on one connection
TICK = 0.01  # a flood generates its frames every TICK seconds
MAX_CONNS_ALL = 5000  # connections one run may open in all

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0, 1, 3, 4, 6, 7, 8, 9)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20

stop = False
announce_at = None  # when to print "flooding": once the flood is steady


def on_term(signum, frame):
    global stop
    stop = True


def now():
    return time.monotonic()


def context(alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a load tool: the tests of TLS are elsewhere
    ctx.set_alpn_protocols([alpn])
    return ctx


def tls_connect(ctx, port):
    s = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return ctx.wrap_socket(s, server_hostname=SNI)
    except BaseException:
        s.close()
        raise


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(
        ">I", sid & 0x7FFFFFFF) + payload


def settings(pairs=()):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def lit(idx, value):
    """A header field literal without indexing, name from the static table,
    value without Huffman coding (so no dynamic table state anywhere)."""
    v = value.encode()
    assert idx < 15 and len(v) < 127
    return bytes([idx, len(v)]) + v


def lit_new(name, value):
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127
    return bytes([0, len(n)]) + n + bytes([len(v)]) + v


def get_block(path="/"):
    """GET https://edge.test PATH as an HPACK block."""
    p = b"\x84" if path == "/" else lit(4, path)
    return b"\x82\x87" + p + lit(1, SNI)


def parse_frames(buf):
    """Splits the whole frames off buf: returns ([(type, flags, sid,
    payload)], rest)."""
    out, off = [], 0
    while len(buf) - off >= 9:
        n = int.from_bytes(buf[off:off + 3], "big")
        if len(buf) - off < 9 + n:
            break
        t, fl = buf[off + 3], buf[off + 4]
        sid = int.from_bytes(buf[off + 5:off + 9], "big") & 0x7FFFFFFF
        out.append((t, fl, sid, buf[off + 9:off + 9 + n]))
        off += 9 + n
    return out, buf[off:]


def pct(xs, p):
    if not xs:
        return -1.0
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


# ------------------------------------------------------------ the probe


class H1:
    def __init__(self, ctx, port):
        self.s = tls_connect(ctx, port)
        self.buf = b""

    def recv(self):
        b = self.s.recv(65536)
        if not b:
            raise IOError("the server closed the connection mid-response")
        self.buf += b

    def get(self, path="/"):
        self.s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + SNI.encode() +
                       b"\r\n\r\n")
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise IOError("a response head over 64 KB")
            self.recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        fields = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            fields[k.strip().lower()] = v.strip().lower()
        if b"content-length" in fields:
            want = int(fields[b"content-length"])
            while len(self.buf) < want:
                self.recv()
            self.buf = self.buf[want:]
        elif fields.get(b"transfer-encoding") == b"chunked":
            while b"\r\n0\r\n\r\n" not in b"\r\n" + self.buf:
                if len(self.buf) > 1 << 22:
                    raise IOError("a chunked body over 4 MB")
                self.recv()
            self.buf = (b"\r\n" + self.buf).split(b"\r\n0\r\n\r\n", 1)[1]
        else:
            raise IOError("a response without a length: %r" % lines[0])
        return status

    def close(self):
        self.s.close()


class H2:
    def __init__(self, ctx, port):
        self.s = tls_connect(ctx, port)
        if self.s.selected_alpn_protocol() != "h2":
            raise IOError("ALPN chose %r, not h2" % self.s.selected_alpn_protocol())
        self.sid = 1
        self.buf = b""
        self.s.sendall(PREFACE + settings([(2, 0)]) +
                       frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30)))

    def get(self, path="/"):
        sid, self.sid = self.sid, self.sid + 2
        self.s.sendall(frame(HEADERS, END_STREAM | END_HEADERS, sid, get_block(path)))
        status = 0
        while True:
            b = self.s.recv(65536)
            if not b:
                raise IOError("the server closed the HTTP/2 connection")
            frames, self.buf = parse_frames(self.buf + b)
            out = b""
            done = False
            for t, fl, fsid, p in frames:
                if t == SETTINGS and not fl & ACK:
                    out += frame(SETTINGS, ACK, 0)
                elif t == PING and not fl & ACK:
                    out += frame(PING, ACK, 0, p)
                elif t == GOAWAY:
                    raise IOError("GOAWAY %d" % struct.unpack(">I", p[4:8])[0])
                elif fsid != sid:
                    continue
                elif t == RST_STREAM:
                    raise IOError("RST_STREAM %d" % struct.unpack(">I", p[:4])[0])
                elif t == HEADERS:
                    off = (1 if fl & PADDED else 0) + (5 if fl & PRIORITY else 0)
                    # :status 200 is index 8 of the static table; nghttp2
                    # always encodes it so, first
                    status = 200 if p[off:off + 1] == b"\x88" else -1
                    done = done or bool(fl & END_STREAM)
                elif t == DATA:
                    if p:
                        out += frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", len(p)))
                    done = done or bool(fl & END_STREAM)
            if out:
                self.s.sendall(out)
            if done:
                return status

    def close(self):
        self.s.close()


def probe(port, rate, seconds, samples_path=None):
    ctx1, ctx2 = context("http/1.1"), context("h2")
    n = int(rate * seconds)
    kinds = ["new", "h1", "h2", "h2", "h1", "h2", "h2", "h2"]
    conns = {"h1": None, "h2": None}
    lat = {"new": [], "ka": []}
    all_ms, errors, ok, rows = [], [], 0, []
    t0 = now() + 0.05
    deadline = t0 + seconds + 4  # a frozen server cannot keep us
    for i in range(n):
        sched = t0 + i / rate
        wait = sched - now()  # read once: a second now() may be past sched
        if wait > 0:
            time.sleep(wait)
        if now() > deadline:
            errors.append("%d requests never sent: past the deadline" % (n - i))
            break
        kind = kinds[i % len(kinds)]
        status = 0
        try:
            if kind == "new":
                c = H1(ctx1, port)
                try:
                    status = c.get()
                finally:
                    c.close()
            else:
                if conns[kind] is None:
                    conns[kind] = (H1 if kind == "h1" else H2)(ctx1 if kind == "h1" else ctx2,
                                                                   port)
                status = conns[kind].get()
            if status != 200:
                raise IOError("status %d" % status)
            ok += 1
        except (OSError, IOError, ssl.SSLError, ValueError, IndexError) as e:
            errors.append("%s request %d at %.2f s: %s" % (kind, i, sched - t0, e))
            if kind != "new" and conns[kind] is not None:
                conns[kind].close()
                conns[kind] = None
        ms = (now() - sched) * 1000.0
        all_ms.append(ms)
        lat["new" if kind == "new" else "ka"].append(ms)
        rows.append("%.3f %s %.2f %d\n" % (sched - t0, kind, ms, status))
    fail = n - ok
    print("probe n=%d ok=%d fail=%d p50=%.2f p90=%.2f p99=%.2f max=%.2f new_p99=%.2f "
          "ka_p99=%.2f" % (n, ok, fail, pct(all_ms, 50), pct(all_ms, 90), pct(all_ms, 99),
                           max(all_ms) if all_ms else -1, pct(lat["new"], 99),
                           pct(lat["ka"], 99)))
    for e in errors[:5]:
        print("error: " + e)
    if samples_path:
        with open(samples_path, "w") as f:
            f.writelines(rows)
    return 0


# ------------------------------------------------------------ floods


class Counts:
    def __init__(self, kind, hold_ms):
        self.kind, self.hold_ms = kind, hold_ms
        self.conns = self.frames = self.closed = self.goaway = self.rst = self.resp = 0
        self.errors = 0
        self.max_hold = 0.0
        self.statuses = {}
        self.goaway_codes = {}

    def ended(self, opened_at):
        self.closed += 1
        self.max_hold = max(self.max_hold, (now() - opened_at) * 1000.0)

    def report(self, still_open):
        overdue = 0
        for opened_at in still_open:
            age = (now() - opened_at) * 1000.0
            self.max_hold = max(self.max_hold, age)
            if self.hold_ms and age > self.hold_ms:
                overdue += 1
        st = ",".join("%s:%d" % kv for kv in sorted(self.statuses.items())) or "-"
        ga = ",".join("%d:%d" % kv for kv in sorted(self.goaway_codes.items())) or "-"
        print("flood kind=%s conns=%d frames=%d closed=%d goaway=%d rst=%d resp=%d "
              "max_hold_ms=%.0f overdue=%d statuses=%s goaway_codes=%s errors=%d" %
              (self.kind, self.conns, self.frames, self.closed, self.goaway, self.rst, self.resp,
               self.max_hold, overdue, st, ga, self.errors))


def flooding():
    """The flood is in place: "flooding" is printed half a second later,
    from announce() in its loop, so that what setting it up cost (its
    handshakes) is over before the measuring starts."""
    global announce_at
    if announce_at is None:
        announce_at = now() + 0.5


def announce():
    global announce_at
    if announce_at is not None and now() >= announce_at:
        announce_at = float("inf")
        print("flooding", flush=True)


def nb_recv(s):
    """Whatever s has to read: bytes, b"" at EOF, None when nothing yet."""
    try:
        b = s.recv(65536)
        return b
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
        return None
    except (ConnectionError, ssl.SSLError, OSError):
        return b""


def slowloris(port, seconds, opt, c):
    ctx = context("http/1.1")
    n = int(opt.get("conns", 100))
    head = b"GET / HTTP/1.1\r\nHost: edge.test\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    conns = {}  # socket -> [opened_at, bytes sent]
    sel = selectors.DefaultSelector()
    end = now() + seconds

    delay = float(opt.get("delay", 0)) / 1000.0
    late = {}  # socket -> when its first byte goes (delay=MS)

    def open_one():
        # the first byte at once, or delay=MS after the handshake: the
        # header_timeout counts from the handshake either way
        s = tls_connect(ctx, port)
        if delay:
            late[s] = now() + delay
        else:
            s.sendall(head[:1])
            c.frames += 1
        s.setblocking(False)
        c.conns += 1
        conns[s] = [now(), 0 if delay else 1]
        sel.register(s, selectors.EVENT_READ)

    for _ in range(n):
        open_one()
    flooding()
    next_byte = next_open = now()
    to_open = 0
    while not stop and now() < end:
        announce()
        for s, at in list(late.items()):  # delay=MS: first bytes now due
            if now() >= at and s in conns:
                del late[s]
                try:
                    s.send(head[:1])
                    conns[s][1] = 1
                    c.frames += 1
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    late[s] = at
                except (ConnectionError, ssl.SSLError, OSError):
                    pass  # its read says how it ended
        if now() >= next_byte:  # one byte a second on each connection
            next_byte += 1.0
            for s, st in list(conns.items()):
                if 0 < st[1] < len(head) - 1:  # after the first, never the last byte
                    try:
                        s.send(head[st[1]:st[1] + 1])
                        st[1] += 1
                        c.frames += 1
                    except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                        pass
                    except (ConnectionError, ssl.SSLError, OSError):
                        pass  # its read says how it ended
        for key, _ in sel.select(timeout=min(0.05, max(0.0, next_byte - now()))):
            s = key.fileobj
            b = nb_recv(s)
            if b is None:
                continue
            if b.startswith(b"HTTP/1.1 "):
                code = b[9:12].decode(errors="replace")
                c.statuses[code] = c.statuses.get(code, 0) + 1
                c.resp += 1
            # a response then the close, or the close: either way it ends
            # here (a response's body and the EOF may come apart: keep
            # reading until EOF for the hold time)
            if b:
                continue
            sel.unregister(s)
            c.ended(conns.pop(s)[0])
            s.close()
            to_open += 1
        # the ones the server ended are replaced, 20 a second at most (a
        # flood of handshakes is check_limits' test, not this one)
        if to_open and now() >= next_open and c.conns < n * 4 and c.conns < MAX_CONNS_ALL:
            next_open = now() + 0.05
            to_open -= 1
            try:
                open_one()
            except (OSError, ssl.SSLError):
                c.errors += 1
    c.report(st[0] for st in conns.values())


def silent(port, seconds, opt, c):
    n = int(opt.get("conns", 200))
    conns = {}
    sel = selectors.DefaultSelector()
    end = now() + seconds

    def open_one():
        s = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
        s.setblocking(False)
        c.conns += 1
        conns[s] = now()
        sel.register(s, selectors.EVENT_READ)

    for _ in range(n):
        open_one()
    flooding()
    while not stop and now() < end:
        announce()
        for key, _ in sel.select(timeout=0.1):
            s = key.fileobj
            b = nb_recv(s)
            if b is None or b:
                continue
            sel.unregister(s)
            c.ended(conns.pop(s))
            s.close()
            if c.conns < n * 10 and c.conns < MAX_CONNS_ALL and not stop and now() < end:
                try:
                    open_one()
                except OSError:
                    c.errors += 1
    c.report(conns.values())


def client_hello(ctx):
    """A fresh ClientHello (its own key share), from a TLS client on memory
    buffers."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=SNI)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def halfopen(port, seconds, opt, c):
    ctx = context("h2")
    n, rate = int(opt.get("conns", 64)), float(opt.get("rate", 20))
    conns = {}
    sel = selectors.DefaultSelector()
    t0 = now()
    end = t0 + seconds
    while not stop and now() < end:
        announce()
        # a new one when the rate allows and fewer than n are held
        while (len(conns) < n and c.conns < (now() - t0) * rate + 1 and
               c.conns < MAX_CONNS_ALL):
            hello = client_hello(ctx)
            if c.conns % 2:
                hello = hello[:16]
            try:
                s = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
                s.sendall(hello)
            except OSError:
                c.errors += 1
                break
            s.setblocking(False)
            c.conns += 1
            c.frames += 1
            conns[s] = now()
            sel.register(s, selectors.EVENT_READ)
        if len(conns) >= min(n, rate):
            flooding()
        for key, _ in sel.select(timeout=TICK):
            s = key.fileobj
            b = nb_recv(s)
            if b is None or b:
                continue
            sel.unregister(s)
            c.ended(conns.pop(s))
            s.close()
    c.report(conns.values())


class H2Flood:
    """One HTTP/2 connection of a flood: the preface sent, reads thrown away
    (SETTINGS answered, GOAWAY and RST_STREAM counted), writes bounded by
    MAX_PENDING."""

    def __init__(self, ctx, port, c, local_settings=()):
        self.s = tls_connect(ctx, port)
        if self.s.selected_alpn_protocol() != "h2":
            raise IOError("ALPN chose %r, not h2" % self.s.selected_alpn_protocol())
        self.s.setblocking(False)
        self.c = c
        self.opened_at = now()
        self.out = bytearray(PREFACE + settings(local_settings))
        self.inbuf = b""
        self.sid = 1
        self.open_streams = set()
        self.dead = False
        c.conns += 1

    def room(self):
        return len(self.out) < MAX_PENDING

    def flush(self):
        while self.out and not self.dead:
            try:
                k = self.s.send(self.out[:16384])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                return
            except (ConnectionError, ssl.SSLError, OSError):
                self.end()
                return
            del self.out[:k]

    def read(self):
        for _ in range(64):  # a budget per wakeup: the loop also writes
            b = nb_recv(self.s)
            if b is None:
                return
            if not b:
                self.end()
                return
            frames, self.inbuf = parse_frames(self.inbuf + b)
            for t, fl, sid, p in frames:
                if t == SETTINGS and not fl & ACK:
                    self.out += frame(SETTINGS, ACK, 0)
                elif t == GOAWAY:
                    code = struct.unpack(">I", p[4:8])[0] if len(p) >= 8 else -1
                    self.c.goaway += 1
                    self.c.goaway_codes[code] = self.c.goaway_codes.get(code, 0) + 1
                    self.end()
                    return
                elif t == RST_STREAM:
                    self.c.rst += 1
                    self.open_streams.discard(sid)
                elif t == HEADERS:
                    self.c.resp += 1
                    if fl & END_STREAM:
                        self.open_streams.discard(sid)
                elif t == DATA and fl & END_STREAM:
                    self.open_streams.discard(sid)

    def end(self):
        if not self.dead:
            self.dead = True
            self.c.ended(self.opened_at)
            self.s.close()

    def next_sid(self):
        sid, self.sid = self.sid, self.sid + 2
        return sid


def h2_flood(kind, port, seconds, opt, c):
    ctx = context("h2")
    n, rate = int(opt.get("conns", 2)), float(opt.get("rate", 5000))
    streams = int(opt.get("streams", 100))
    reconnects = int(opt.get("reconnect", 50))
    local = [(4, 0)] if kind == "zerowindow" else []
    big = b"\x82\x87" + lit(4, "/bytes/4000000") + lit(1, SNI)
    cont_field = lit_new("x-flood", "c" * 30)  # 40 bytes
    settings6 = settings([(1, 4096), (2, 0), (3, 100), (4, 65535), (5, 16384), (6, 16384)])

    def make():
        f = H2Flood(ctx, port, c, local)
        if kind == "continuation":
            f.out += frame(HEADERS, END_STREAM, f.next_sid(), get_block())
        return f

    conns = [make() for _ in range(n)]
    flooding()
    t0 = last = now()
    end = t0 + seconds
    credit = 0.0
    reconnect_at = 0.0
    while not stop and now() < end:
        announce()
        t = now()
        credit = min(credit + (t - last) * rate, rate * 0.1)  # at most 100 ms' worth at once
        last = t
        burst = int(credit)
        credit -= burst
        for f in conns:
            if f.dead or not f.room():
                continue
            if kind == "zerowindow":
                while (len(f.open_streams) < streams and c.frames < streams * n * 4 and
                       f.sid < 1 << 30):
                    sid = f.next_sid()
                    f.open_streams.add(sid)
                    f.out += frame(HEADERS, END_STREAM | END_HEADERS, sid, big)
                    c.frames += 1
                continue
            chunk = []
            for _ in range(burst):
                if kind == "reset":
                    if f.sid >= 1 << 30:
                        break
                    sid = f.next_sid()
                    chunk.append(frame(HEADERS, END_STREAM | END_HEADERS, sid, get_block()))
                    chunk.append(frame(RST_STREAM, 0, sid, struct.pack(">I", 8)))  # CANCEL
                elif kind == "continuation":
                    chunk.append(frame(CONTINUATION, 0, 1, cont_field))
                elif kind == "ping":
                    chunk.append(frame(PING, 0, 0, struct.pack(">Q", c.frames + len(chunk))))
                elif kind == "settings":
                    chunk.append(settings6)
            c.frames += len(chunk) // 2 if kind == "reset" else len(chunk)
            f.out += b"".join(chunk)
        for f in conns:
            f.flush()
            f.read()
        # a connection the server ended is replaced, at most 2 a second
        alive = [f for f in conns if not f.dead]
        if len(alive) < n and c.conns < n + reconnects and t >= reconnect_at:
            reconnect_at = t + 0.5
            try:
                alive.append(make())
            except (OSError, IOError, ssl.SSLError):
                c.errors += 1
        conns = alive
        sel_wait = max(0.0, TICK - (now() - t))
        fds = [f.s for f in conns]
        if fds:
            select.select(fds, [f.s for f in conns if f.out], [], sel_wait)
        else:
            time.sleep(sel_wait)
    c.report(f.opened_at for f in conns if not f.dead)
    for f in conns:
        f.s.close()


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    signal.signal(signal.SIGTERM, on_term)
    kind, port = argv[1], int(argv[2])
    if kind == "probe":
        return probe(port, float(argv[3]), float(argv[4]), argv[5] if len(argv) > 5 else None)
    seconds = float(argv[3])
    os.nice(5)
    opt = dict(a.split("=", 1) for a in argv[4:])
    c = Counts(kind, float(opt.get("hold", 0)))
    try:  # hundreds of sockets: the soft limit may be 1024
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    if kind == "slowloris":
        slowloris(port, seconds, opt, c)
    elif kind == "silent":
        silent(port, seconds, opt, c)
    elif kind == "halfopen":
        halfopen(port, seconds, opt, c)
    elif kind in ("reset", "continuation", "ping", "settings", "zerowindow"):
        h2_flood(kind, port, seconds, opt, c)
    else:
        sys.stderr.write("flood.py: unknown kind %r\n" % kind)
        return 2
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
