#!/usr/bin/python3
"""wsbadup.py - an HTTP/1.1 TLS upstream whose WebSocket handshake is wrong,
for check_websocket: corral must not open a tunnel to it.

  wsbadup.py PORT CERTS [interim]

Listens on 127.0.0.1:PORT with CERTS/lb.crt (client certificate required,
signed by CERTS/ca.crt; ALPN http/1.1). An upgrade request is answered 101
with Upgrade and Connection as they should be but a Sec-WebSocket-Accept
computed from another key; with interim, a "100 Continue" carrying
Upgrade: websocket and the right Accept first, then a 101 with Upgrade and
Connection but no Accept. Any other request gets 200 "ok". Each
connection is served in its own thread; it runs until killed.
"""
import base64
import hashlib
import socket
import ssl
import sys
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_of(head):
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            return base64.b64encode(hashlib.sha1(value.strip() + GUID).digest())
    return b""


def serve(conn, interim):
    try:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                b = conn.recv(4096)
                if not b:
                    return
                buf += b
            head, buf = buf.split(b"\r\n\r\n", 1)
            if b"upgrade: websocket" in head.lower() and interim:
                conn.sendall(b"HTTP/1.1 100 Continue\r\nUpgrade: websocket\r\n"
                             b"Sec-WebSocket-Accept: " + accept_of(head) + b"\r\n\r\n"
                             b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\n\r\n")
                continue
            if b"upgrade: websocket" in head.lower():
                wrong = base64.b64encode(hashlib.sha1(b"not the key" + GUID).digest())
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + wrong +
                             b"\r\n\r\n")
                continue
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    except OSError:
        pass
    finally:
        conn.close()


def main():
    port, certs = int(sys.argv[1]), sys.argv[2]
    interim = len(sys.argv) > 3 and sys.argv[3] == "interim"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{certs}/lb.crt", f"{certs}/lb.key")
    ctx.load_verify_locations(f"{certs}/ca.crt")
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["http/1.1"])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    print(f"wsbadup: listening on 127.0.0.1:{port}", flush=True)
    while True:
        c, _ = ls.accept()
        try:
            c = ctx.wrap_socket(c, server_side=True)
        except (OSError, ssl.SSLError):
            c.close()
            continue
        threading.Thread(target=serve, args=(c, interim), daemon=True).start()


if __name__ == "__main__":
    main()
