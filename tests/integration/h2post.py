#!/usr/bin/env python3
"""h2post.py - an HTTP/2 client that uploads bodies a server answers early
(413), for check_h2abuse.c. Python 3 standard library only.

  h2post.py PORT SIZE

Connects to 127.0.0.1:PORT (TLS, ALPN h2, SNI edge.test) and, one after
another on the same connection:
  1. POST /echo with content-length SIZE and a body of SIZE bytes,
  2. POST /bytes/10, no content-length, a body of SIZE bytes (testup
     answers it once the body is in),
  3. GET /bytes/10.
It sends each body as fast as the server's flow control lets it, in
16 KB DATA frames, and stops when the server resets the stream. A stream
is done when it ends or is reset, then the next one starts. Prints one
line per stream, and exits 0 when all three are done:
  stream SID status S reset CODE sent BYTES
S is 200 when the answer's header block opens with the static :status
200 (0x88), "other" for any other answer, "none" without one; CODE the
RST_STREAM error code received, or "none"; BYTES the body bytes sent.
Exit 1 after 20 s or when the server closes the connection, 2 when it
could not connect. Only ever connects to 127.0.0.1; every loop is
bounded in count and time.
"""
import select
import socket
import ssl
import struct
import sys
import time

HOST, SNI = "127.0.0.1", "edge.test"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
INITIAL_WINDOW_SIZE = 4
CHUNK = 16384


def frame(ftype, flags, sid, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) +
            struct.pack(">I", sid & 0x7FFFFFFF) + payload)


def lit(idx, value):
    """A literal field without indexing, its name from the static table
    (a 4-bit prefix: index 15 and up take a second byte), no Huffman."""
    v = value.encode()
    name = bytes([idx]) if idx < 15 else bytes([15, idx - 15])
    return name + bytes([len(v)]) + v


def head(method_post, path, clen):
    block = (b"\x83" if method_post else b"\x82") + b"\x87" + lit(4, path) + lit(1, SNI)
    if clen is not None:
        block += lit(28, str(clen))  # content-length
    return block


def main(argv):
    port, size = int(argv[1]), int(argv[2])
    raw = socket.create_connection((HOST, port), timeout=5.0)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the tests of TLS are elsewhere
    ctx.set_alpn_protocols(["h2"])
    try:
        s = ctx.wrap_socket(raw, server_hostname=SNI)
    except OSError as e:
        sys.stderr.write("h2post: %s\n" % e)
        return 2
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    plan = [(1, True, "/echo", size), (3, True, "/bytes/10", None), (5, False, "/bytes/10", None)]
    conn_w, init_w = 65535, 65535
    buf, body = b"", b"x" * CHUNK
    end = time.monotonic() + 20
    for sid, post, path, clen in plan:
        s.sendall(frame(HEADERS, END_HEADERS | (0 if post else END_STREAM), sid,
                        head(post, path, clen)))
        stream_w, sent, status, reset, done, ended = init_w, 0, "none", "none", False, False
        body_done = not post
        while not done and time.monotonic() < end:
            out = b""
            while not body_done and sent < size and conn_w > 0 and stream_w > 0 and \
                    len(out) < 4 * CHUNK:
                n = min(CHUNK, size - sent, conn_w, stream_w)
                last = sent + n == size
                out += frame(DATA, END_STREAM if last else 0, sid, body[:n])
                sent, conn_w, stream_w = sent + n, conn_w - n, stream_w - n
                body_done = last
            if out:
                s.sendall(out)
            if s.pending() == 0:
                select.select([s], [], [], 0.05 if out else 0.5)
            try:
                s.setblocking(False)
                chunk = s.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                chunk = None
            finally:
                s.setblocking(True)
            if chunk is None:
                continue
            if not chunk:
                sys.stderr.write("h2post: the server closed the connection\n")
                return 1
            buf += chunk
            reply = b""
            while len(buf) >= 9:
                n = struct.unpack(">I", b"\0" + buf[:3])[0]
                if len(buf) < 9 + n:
                    break
                ftype, flags = buf[3], buf[4]
                fsid = struct.unpack(">I", buf[5:9])[0] & 0x7FFFFFFF
                payload, buf = buf[9:9 + n], buf[9 + n:]
                if ftype == SETTINGS and not flags & ACK:
                    reply += frame(SETTINGS, ACK, 0)
                    for i in range(0, len(payload) - 5, 6):
                        ident, val = struct.unpack(">HI", payload[i:i + 6])
                        if ident == INITIAL_WINDOW_SIZE:
                            stream_w += val - init_w
                            init_w = val
                elif ftype == PING and not flags & ACK:
                    reply += frame(PING, ACK, 0, payload)
                elif ftype == GOAWAY:
                    sys.stderr.write("h2post: GOAWAY %r\n" % payload[:8])
                elif ftype == WINDOW_UPDATE:
                    inc = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
                    if fsid == 0:
                        conn_w += inc
                    elif fsid == sid:
                        stream_w += inc
                elif fsid != sid:
                    continue
                elif ftype == HEADERS and status == "none":
                    status = "200" if payload[:1] == b"\x88" else "other"
                elif ftype == RST_STREAM:
                    reset, done = str(struct.unpack(">I", payload[:4])[0]), True
                elif ftype == DATA and n:
                    reply += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", n))
                if ftype in (DATA, HEADERS) and flags & END_STREAM:
                    ended = True
            done = done or (ended and body_done)
            if reply:
                s.sendall(reply)
        print("stream %d status %s reset %s sent %d" % (sid, status, reset, sent))
        sys.stdout.flush()
        if not done:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
