#!/usr/bin/env python3
"""drip.py - a client that takes a large response a few bytes at a time,
never stopping altogether, for check_h2abuse.c and check_h1hostile.c.
Python 3 standard library only.

  drip.py PORT MODE STEP EVERY_S HOLD_S

Connects to 127.0.0.1:PORT (TLS, SNI edge.test), asks for /bytes/4000000
and from then on lets STEP bytes of it through every EVERY_S seconds:
  h2stream  HTTP/2: the connection's window opened wide, the stream's
            left at 65535 and, once that is used, a WINDOW_UPDATE of STEP
            on the stream each time (every frame the server sends is read)
  h2conn    HTTP/2: the stream's window wide (SETTINGS_INITIAL_WINDOW_SIZE
            2^30), the connection's left at 65535, then a WINDOW_UPDATE of
            STEP on the connection each time
  h1        HTTP/1.1 over TLS with a 4 KB receive buffer: STEP bytes read
            from the socket each time (not decrypted, only taken)
One line on stdout at the end, flushed:
  reset after MS      (h2) the server reset the stream MS ms after the request
  closed after MS     the server ended the connection (h1: once the client
                      has read all that its kernel and the server's took)
  complete after MS   the whole response came
  held MS             none of these after HOLD_S seconds
Exit 0 when it ran, 2 when it could not connect. Only ever connects to
127.0.0.1; every loop is bounded in count and time.
"""
import select
import socket
import ssl
import struct
import sys
import time

HOST, SNI = "127.0.0.1", "edge.test"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 7, 8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
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


def connect(port, alpn, rcvbuf):
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect
    raw.settimeout(5.0)
    raw.connect((HOST, port))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the tests of TLS are elsewhere
    ctx.set_alpn_protocols([alpn])
    return raw, ctx


def h2(port, conn_mode, step, every, hold):
    raw, ctx = connect(port, "h2", 0)
    s = ctx.wrap_socket(raw, server_hostname=SNI)
    if s.selected_alpn_protocol() != "h2":
        raise OSError("ALPN chose %r" % s.selected_alpn_protocol())
    out = PREFACE
    if conn_mode:
        out += frame(SETTINGS, 0, 0, struct.pack(">HI", 4, WIDE))
    else:
        out += frame(SETTINGS, 0, 0)
        out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", WIDE - 65535))
    out += frame(HEADERS, END_STREAM | END_HEADERS, 1,
                 b"\x82\x87" + lit(4, "/bytes/4000000") + lit(1, SNI))
    s.sendall(out)
    t0 = time.monotonic()
    ms = lambda: (time.monotonic() - t0) * 1000
    buf, got, nxt = b"", 0, t0 + every
    s.setblocking(False)
    while time.monotonic() - t0 < hold:
        r, _, _ = select.select([s], [], [], max(0.0, min(nxt - time.monotonic(), 0.1)))
        if r or s.pending():
            try:
                chunk = s.recv(65536)
            except ssl.SSLWantReadError:
                chunk = None
            except OSError:
                chunk = b""
            if chunk == b"":
                say("closed after %d" % ms())
                return 0
            buf += chunk or b""
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            ftype, flags = buf[3], buf[4]
            sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            buf = buf[9 + n:]
            if ftype == SETTINGS and not flags & ACK:
                s.setblocking(True)
                s.sendall(frame(SETTINGS, ACK, 0))
                s.setblocking(False)
            elif ftype == DATA and sid == 1:
                got += n
                if flags & END_STREAM:
                    say("complete after %d bytes %d" % (ms(), got))
                    return 0
            elif ftype == RST_STREAM and sid == 1:
                say("reset after %d bytes %d" % (ms(), got))
                return 0
            elif ftype == GOAWAY:
                say("closed after %d bytes %d" % (ms(), got))
                return 0
        if time.monotonic() >= nxt:
            nxt += every
            try:
                s.setblocking(True)
                s.sendall(frame(WINDOW_UPDATE, 0, 0 if conn_mode else 1,
                                struct.pack(">I", step)))
                s.setblocking(False)
            except OSError:
                say("closed after %d bytes %d" % (ms(), got))
                return 0
    say("held %d bytes %d" % (ms(), got))
    return 0


def h1(port, step, every, hold):
    raw, ctx = connect(port, "http/1.1", 4096)
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, outg, server_hostname=SNI)
    for _ in range(50):  # the handshake, by hand: the socket stays ours
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            raw.sendall(outg.read())
            data = raw.recv(65536)
            if not data:
                raise OSError("closed in the handshake")
            inc.write(data)
    tls.write(b"GET /bytes/4000000 HTTP/1.1\r\nHost: edge.test\r\n\r\n")
    raw.sendall(outg.read())
    t0 = time.monotonic()
    ms = lambda: (time.monotonic() - t0) * 1000
    got = 0
    raw.settimeout(every)
    while time.monotonic() - t0 < hold:
        time.sleep(every)
        try:
            data = raw.recv(step)
        except socket.timeout:
            continue
        except OSError:
            data = b""
        if not data:
            say("closed after %d bytes %d" % (ms(), got))
            return 0
        got += len(data)
    say("held %d bytes %d" % (ms(), got))
    return 0


def main(argv):
    port, mode, step = int(argv[1]), argv[2], int(argv[3])
    every, hold = float(argv[4]), float(argv[5])
    try:
        if mode == "h1":
            return h1(port, step, every, hold)
        return h2(port, mode == "h2conn", step, every, hold)
    except OSError as e:
        sys.stderr.write("drip: %s\n" % e)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
