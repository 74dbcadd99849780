#!/usr/bin/env python3
"""steady.py - a client that reads its responses slowly but steadily, at
the TCP level, for check_sendrate.c. Python 3 standard library only.

  steady.py PORT MODE STREAMS STEP EVERY_S HOLD_S BYTES

Connects to 127.0.0.1:PORT (TLS, SNI edge.test), asks for /bytes/BYTES
(STREAMS times at once over HTTP/2) and takes STEP bytes from its socket
every EVERY_S seconds - STEP/EVERY_S bytes a second, never a pause - with
the kernel's receive buffer left to autotune:
  h1       HTTP/1.1, one request (STREAMS is ignored)
  h2       HTTP/2, every window opened wide (SETTINGS_INITIAL_WINDOW_SIZE
           2^30 and the connection's): only TCP holds the responses
  h2chain  HTTP/2 with the default windows (65535), each stream's and the
           connection's given back as its DATA is read, as browsers do,
           and each stream depending exclusively on the one before
           (RFC 7540 priorities): the server sends them one after the
           other, the later ones waiting on the connection
One line on stdout per response, then one at the end, flushed:
  stream SID complete MS bytes N    its last byte came MS ms after the start
  stream SID reset MS bytes N       the server reset it
  closed MS                         the server ended the connection
  done MS                           every response ended (completed or reset)
  held MS                           HOLD_S seconds passed first
Exit 0 when it ran, 2 when it could not connect. Only ever connects to
127.0.0.1; every loop is bounded in count and time.
"""
import socket
import ssl
import struct
import sys
import time

HOST, SNI = "127.0.0.1", "edge.test"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 2, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK, PRIO = 0x1, 0x4, 0x1, 0x20
WIDE = 1 << 30


def frame(ftype, flags, sid, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) +
            struct.pack(">I", sid & 0x7FFFFFFF) + payload)


def lit(idx, value):
    """A literal field, its name from the static table, no Huffman."""
    v = value.encode()
    return bytes([idx, len(v)]) + v


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Tls:
    """TLS over a socket we read ourselves, STEP bytes at a time."""

    def __init__(self, port, alpn):
        self.raw = socket.create_connection((HOST, port), timeout=5.0)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the tests of TLS are elsewhere
        ctx.set_alpn_protocols([alpn])
        self.inc, self.outg = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.outg, server_hostname=SNI)
        for _ in range(50):  # the handshake, by hand
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.raw.sendall(self.outg.read())
                data = self.raw.recv(65536)
                if not data:
                    raise OSError("closed in the handshake")
                self.inc.write(data)
        self.raw.sendall(self.outg.read())
        if self.tls.selected_alpn_protocol() != alpn:
            raise OSError("ALPN chose %r" % self.tls.selected_alpn_protocol())

    def send(self, data):
        self.tls.write(data)
        self.raw.sendall(self.outg.read())

    def take(self, step, wait):
        """At most step bytes off the socket; what they decrypt to, or
        None when the server closed."""
        self.raw.settimeout(wait)
        try:
            data = self.raw.recv(step)
        except socket.timeout:
            return b""
        except OSError:
            return None
        if not data:
            return None
        self.inc.write(data)
        out = b""
        for _ in range(1000):
            try:
                out += self.tls.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLError:
                return None
        pending = self.outg.read()  # a key update, tickets are not answered
        if pending:
            self.raw.sendall(pending)
        return out


def h1(port, step, every, hold, nbytes):
    c = Tls(port, "http/1.1")
    c.send(("GET /bytes/%d HTTP/1.1\r\nHost: edge.test\r\n\r\n" % nbytes).encode())
    t0 = time.monotonic()
    ms = lambda: (time.monotonic() - t0) * 1000
    buf, body = b"", -1
    for _ in range(int(hold / every) + 2):
        if time.monotonic() - t0 >= hold:
            break
        time.sleep(every)
        got = c.take(step, every)
        if got is None:
            say("closed %d" % ms())
            return 0
        if body < 0:
            buf += got
            if b"\r\n\r\n" in buf:
                body = len(buf) - buf.index(b"\r\n\r\n") - 4
                buf = b""
        else:
            body += len(got)
        if body >= nbytes:
            say("stream 1 complete %d bytes %d" % (ms(), body))
            say("done %d" % ms())
            return 0
    say("held %d" % ms())
    return 0


def h2(port, chain, streams, step, every, hold, nbytes):
    c = Tls(port, "h2")
    if chain:
        out = PREFACE + frame(SETTINGS, 0, 0)
    else:
        out = PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, WIDE))
        out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", WIDE - 65535))
    for i in range(streams):
        sid = 1 + 2 * i
        block = b"\x82\x87" + lit(4, "/bytes/%d" % nbytes) + lit(1, SNI)
        flags = END_STREAM | END_HEADERS
        if chain and i > 0:  # exclusively on the one before, weight 16
            block = struct.pack(">IB", 0x80000000 | (sid - 2), 15) + block
            flags |= PRIO
        out += frame(HEADERS, flags, sid, block)
    c.send(out)
    t0 = time.monotonic()
    ms = lambda: (time.monotonic() - t0) * 1000
    got = {1 + 2 * i: 0 for i in range(streams)}
    left = set(got)
    buf = b""
    for _ in range(int(hold / every) + 2):
        if time.monotonic() - t0 >= hold:
            break
        time.sleep(every)
        data = c.take(step, every)
        if data is None:
            say("closed %d" % ms())
            return 0
        buf += data
        reply = b""
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            ftype, flags = buf[3], buf[4]
            sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            payload, buf = buf[9:9 + n], buf[9 + n:]
            if ftype == SETTINGS and not flags & ACK:
                reply += frame(SETTINGS, ACK, 0)
            elif ftype == PING and not flags & ACK:
                reply += frame(PING, ACK, 0, payload)
            elif ftype == DATA and sid in left:
                got[sid] += n
                if chain and n:  # given back as read
                    reply += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", n))
                    if not flags & END_STREAM:
                        reply += frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", n))
                if flags & END_STREAM:
                    left.discard(sid)
                    say("stream %d complete %d bytes %d" % (sid, ms(), got[sid]))
            elif ftype == RST_STREAM and sid in left:
                left.discard(sid)
                say("stream %d reset %d bytes %d" % (sid, ms(), got[sid]))
            elif ftype == GOAWAY:
                say("closed %d" % ms())
                return 0
        if reply:
            c.send(reply)
        if not left:
            say("done %d" % ms())
            return 0
    say("held %d" % ms())
    return 0


def main(argv):
    port, mode, streams, step = int(argv[1]), argv[2], int(argv[3]), int(argv[4])
    every, hold, nbytes = float(argv[5]), float(argv[6]), int(argv[7])
    try:
        if mode == "h1":
            return h1(port, step, every, hold, nbytes)
        return h2(port, mode == "h2chain", streams, step, every, hold, nbytes)
    except OSError as e:
        sys.stderr.write("steady: %s\n" % e)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
