#!/usr/bin/env python3
"""h2hold.py - an HTTP/2 client that stops reading its socket altogether
while its flow-control windows stay wide open, for check_h2abuse.c.
Python 3 standard library only.

  h2hold.py PORT STREAMS MORE WAIT_S HOLD_S [EVERY_S]

Connects to 127.0.0.1:PORT (TLS, ALPN h2, SNI edge.test) with a small
receive buffer, announces SETTINGS_INITIAL_WINDOW_SIZE 2^30 and opens the
connection's window as far, asks for STREAMS large responses
(/bytes/4000000) and from then on never reads a byte. Once its receive
queue has stopped growing (the server's writes are blocked) and WAIT_S more
seconds have passed, it asks for MORE of them (all at once, or one every
EVERY_S seconds when that is given and not 0). Then it keeps the connection
busy, a WINDOW_UPDATE of 1 byte every 0.3 s (which asks for no answer), for
at most HOLD_S seconds or until the server ends the connection. Lines on
stdout, each flushed:
  sent N              the first STREAMS requests are out
  blocked after MS    the receive queue stopped growing MS ms after them
  more N              the MORE requests are out
  closed after MS     the server ended the connection MS ms after "blocked"
  held MS             it had not after HOLD_S seconds
Exit 0 when it ran, 2 when it could not connect. Only ever connects to
127.0.0.1; every loop is bounded in count and time.
"""
import fcntl
import socket
import ssl
import struct
import sys
import termios
import time

HOST, SNI = "127.0.0.1", "edge.test"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS, SETTINGS, WINDOW_UPDATE = 1, 4, 8
END_STREAM, END_HEADERS = 0x1, 0x4
WINDOW = 1 << 30


def frame(ftype, flags, sid, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) +
            struct.pack(">I", sid & 0x7FFFFFFF) + payload)


def lit(idx, value):
    """A literal field, its name from the static table, no Huffman."""
    v = value.encode()
    return bytes([idx, len(v)]) + v


# GET https://edge.test/bytes/4000000
BIG = b"\x82\x87" + lit(4, "/bytes/4000000") + lit(1, SNI)


def queued(s):
    """Bytes waiting in the kernel's receive queue of socket s."""
    return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv):
    port, streams, more = int(argv[1]), int(argv[2]), int(argv[3])
    wait_s, hold_s = float(argv[4]), float(argv[5])
    every_s = float(argv[6]) if len(argv) > 6 else 0.0
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    raw.settimeout(5.0)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the tests of TLS are elsewhere
    ctx.set_alpn_protocols(["h2"])
    try:
        raw.connect((HOST, port))
        s = ctx.wrap_socket(raw, server_hostname=SNI)
    except OSError as e:
        sys.stderr.write("h2hold: %s\n" % e)
        return 2
    if s.selected_alpn_protocol() != "h2":
        sys.stderr.write("h2hold: ALPN chose %r\n" % s.selected_alpn_protocol())
        return 2
    sid = 1
    out = PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, WINDOW))
    out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", WINDOW - 65535))
    for _ in range(streams):
        out += frame(HEADERS, END_STREAM | END_HEADERS, sid, BIG)
        sid += 2
    s.sendall(out)
    t0 = time.monotonic()
    say("sent %d" % streams)

    # the receive queue fills, then stands still: the server's writes block
    last, since = -1, time.monotonic()
    while time.monotonic() - t0 < 20:
        n = queued(s)
        if n != last:
            last, since = n, time.monotonic()
        elif n > 0 and time.monotonic() - since >= 0.5:
            break
        time.sleep(0.05)
    blocked = time.monotonic()
    say("blocked after %d" % ((blocked - t0) * 1000))
    time.sleep(wait_s)  # the time under test: how long its output has been stuck

    out = b""
    for i in range(more):
        out += frame(HEADERS, END_STREAM | END_HEADERS, sid, BIG)
        sid += 2
        if every_s > 0:
            if i > 0:
                time.sleep(every_s)
            s.sendall(out)
            out = b""
    if out:
        s.sendall(out)
    say("more %d" % more)

    end = time.monotonic() + hold_s
    while time.monotonic() < end:
        try:
            s.sendall(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1)))
        except OSError:  # reset: the server closed its end
            say("closed after %d" % ((time.monotonic() - blocked) * 1000))
            return 0
        time.sleep(0.3)
    say("held %d" % ((time.monotonic() - blocked) * 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
