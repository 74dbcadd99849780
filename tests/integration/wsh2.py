#!/usr/bin/python3
"""wsh2.py - a WebSocket client over HTTP/2 extended CONNECT (RFC 8441),
with python3-h2 (Debian's; run it with /usr/bin/python3), for the
WebSocket tests against testup --connect-protocol and through corral.

  wsh2.py HOST PORT PATH [-n N] [--size BYTES] [--ca CA] [--cert CRT --key KEY]
          [--sni NAME] [--protocol NAME] [--close CODE] [--wait-pings K]
          [--expect-status S] [--timeout S]

Connects to HOST:PORT (TLS, ALPN h2, SNI --sni or HOST; verified against
--ca when given, else not verified), waits for the server's SETTINGS,
opens one stream :method CONNECT, :protocol websocket, :scheme https,
:path PATH, sec-websocket-version 13 (and sec-websocket-protocol when
--protocol is given). On :status 200 it sends N masked text messages
("m0 ..." padded to --size bytes, default 16), one at a time, each checked
against its echo; answers the server's pings with pongs and, with
--wait-pings K, waits until K pings have arrived. Then it ends: with
--close CODE a close frame (the echoed close must carry CODE, then
END_STREAM), else END_STREAM (END_STREAM must come back).

Prints one JSON line: {"status", "connect_protocol" (the server's SETTINGS
said 1), "protocol" (the sec-websocket-protocol answered), "sent",
"echoed", "pings", "close_code", "end_stream", "ms"}. Exit 0 when the
status is --expect-status (200 by default) and, for 200, every message came
back intact and the stream ended as described; 1 otherwise; 2 when it could
not connect. Every wait is bounded by --timeout (10 s) overall.
"""
import argparse
import json
import os
import socket
import ssl
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events

ENABLE_CONNECT_PROTOCOL = 0x8


def frame(opcode, payload, fin=True):
    """A masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n <= 0xFFFF:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return head + mask + body


def parse_frames(buf):
    """Whole unmasked server frames at the front of buf: ([(opcode, fin,
    payload)], rest). Raises ValueError on a masked server frame."""
    out = []
    while len(buf) >= 2:
        b0, b1 = buf[0], buf[1]
        if b1 & 0x80:
            raise ValueError("server frame is masked")
        n, off = b1 & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, off = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, off = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < off + n:
            break
        out.append((b0 & 0x0F, bool(b0 & 0x80), bytes(buf[off:off + n])))
        buf = buf[off + n:]
    return out, buf


class Client:
    def __init__(self, args):
        self.args = args
        self.deadline = time.monotonic() + args.timeout
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if args.ca:
            ctx.load_verify_locations(args.ca)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if args.cert:
            ctx.load_cert_chain(args.cert, args.key)
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((args.host, args.port), timeout=args.timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=args.sni or args.host)
        if self.sock.selected_alpn_protocol() != "h2":
            raise OSError("no h2 by ALPN")
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()
        self.stream = None
        self.settings = False
        self.connect_protocol = False
        self.status = None
        self.protocol = None
        self.data = b""
        self.end_stream = False
        self.reset = False
        self.pings = 0
        self.closed = False

    def flush(self):
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def step(self):
        """Reads once and handles the events. False on EOF or timeout."""
        left = self.deadline - time.monotonic()
        if left <= 0 or self.closed:
            return False
        self.sock.settimeout(left)
        try:
            got = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLError, OSError):
            return False
        if not got:
            self.closed = True
            return False
        for ev in self.conn.receive_data(got):
            self.event(ev)
        self.flush()
        return True

    def event(self, ev):
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            self.settings = True
            cs = ev.changed_settings.get(ENABLE_CONNECT_PROTOCOL)
            if cs is not None:
                self.connect_protocol = cs.new_value == 1
        elif isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == self.stream:
            hdrs = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                    for k, v in ev.headers}
            self.status = int(hdrs.get(":status", "0"))
            self.protocol = hdrs.get("sec-websocket-protocol")
        elif isinstance(ev, h2.events.DataReceived):
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if ev.stream_id == self.stream:
                self.data += ev.data
        elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == self.stream:
            self.end_stream = True
        elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == self.stream:
            self.reset = True
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.closed = True

    def send_ws(self, data):
        """Sends in DATA frames as large as the peer and the windows allow."""
        while data:
            n = min(len(data), self.conn.max_outbound_frame_size,
                    self.conn.local_flow_control_window(self.stream))
            if n <= 0:
                if not self.step():
                    raise OSError("no window to send in")
                continue
            self.conn.send_data(self.stream, data[:n])
            self.flush()
            data = data[n:]

    def next_frame(self, pings=None):
        """The next data or close frame from the server, answering pings;
        None when the stream ended or the time is up, or (with pings) once
        that many pings have arrived."""
        while pings is None or self.pings < pings:
            frames, _ = parse_frames(self.data)
            if frames:
                op, fin, payload = frames[0]
                self.data = self.data[self._frame_len(self.data):]
                if op == 9:
                    self.pings += 1
                    self.send_ws(frame(10, payload))
                    continue
                if op == 10:
                    continue
                return op, fin, payload
            if self.end_stream or self.reset or not self.step():
                return None
        return None

    @staticmethod
    def _frame_len(buf):
        n, off = buf[1] & 0x7F, 2
        if n == 126:
            n, off = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            n, off = struct.unpack("!Q", buf[2:10])[0], 10
        return off + n

    def run(self):
        a = self.args
        while not self.settings and self.step():
            pass
        self.stream = self.conn.get_next_available_stream_id()
        hdrs = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                (":path", a.path), (":authority", "%s:%d" % (a.sni or a.host, a.port)),
                ("sec-websocket-version", "13")]
        if a.protocol:
            hdrs.append(("sec-websocket-protocol", a.protocol))
        self.conn.send_headers(self.stream, hdrs)
        self.flush()
        while self.status is None and not self.reset and self.step():
            pass
        summary = {"status": self.status, "connect_protocol": self.connect_protocol,
                   "protocol": self.protocol, "sent": 0, "echoed": 0, "pings": 0,
                   "close_code": None, "end_stream": False}
        ok = self.status == a.expect_status
        if self.status != 200:
            summary["end_stream"] = self.end_stream
            return ok, summary
        for i in range(a.n):
            msg = ("m%d " % i).encode().ljust(a.size, b"x")
            self.send_ws(frame(1, msg))
            summary["sent"] += 1
            got = self.next_frame()
            if got is None or got != (1, True, msg):
                ok = False
                break
            summary["echoed"] += 1
        if ok and self.pings < a.wait_pings:
            self.next_frame(pings=a.wait_pings)
            ok = self.pings >= a.wait_pings
        if a.close is not None:
            self.send_ws(frame(8, struct.pack("!H", a.close)))
            got = self.next_frame()
            if got is not None and got[0] == 8 and len(got[2]) >= 2:
                summary["close_code"] = struct.unpack("!H", got[2][:2])[0]
            ok = ok and summary["close_code"] == a.close
            while not self.end_stream and not self.reset and self.step():
                pass
            if not self.end_stream and not self.reset:
                self.conn.end_stream(self.stream)
                self.flush()
        else:
            self.conn.end_stream(self.stream)
            self.flush()
            while not self.end_stream and not self.reset and self.step():
                pass
        summary["end_stream"] = self.end_stream
        summary["pings"] = self.pings
        ok = ok and self.end_stream
        return ok, summary


def main():
    p = argparse.ArgumentParser(description="WebSocket over HTTP/2 extended CONNECT")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("path")
    p.add_argument("-n", type=int, default=3)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--ca")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--sni")
    p.add_argument("--protocol")
    p.add_argument("--close", type=int)
    p.add_argument("--wait-pings", type=int, default=0)
    p.add_argument("--expect-status", type=int, default=200)
    p.add_argument("--timeout", type=float, default=10.0)
    a = p.parse_args()
    t0 = time.monotonic()
    try:
        c = Client(a)
    except (OSError, ssl.SSLError) as e:
        print(json.dumps({"error": str(e)}))
        return 2
    try:
        ok, summary = c.run()
    finally:
        c.sock.close()
    summary["ms"] = int((time.monotonic() - t0) * 1000)
    print(json.dumps(summary), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
