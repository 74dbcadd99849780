#!/usr/bin/python3
"""h2ws.py - an RFC 8441 WebSocket client over HTTP/2 (extended CONNECT),
with python3-h2 (4.1), for check_wsh2.c. It writes and reads WebSocket
frames itself (RFC 6455: client frames masked).

  h2ws.py settings PORT           the server's first SETTINGS frame
  h2ws.py connect PORT PROTO PATH [end|cl]
                                  a CONNECT with :protocol PROTO and :path
                                  PATH ("-": that field left out), its HEADERS
                                  ending the stream (end) or with a
                                  content-length (cl): its answer
  h2ws.py echo PORT N END         extended CONNECT to /ws, N text messages
                                  sent and read back one by one, then the
                                  stream ended by END: "fin" (END_STREAM,
                                  then waits for the server's end) or "rst"
                                  (RST_STREAM CANCEL)
  h2ws.py stall PORT BYTES HOLD_S extended CONNECT to /ws, BYTES in binary
                                  messages of 8 MB sent as far as flow
                                  control lets it, nothing of the echo
                                  acknowledged (no WINDOW_UPDATE: the client
                                  does not read); once nothing has moved for
                                  1.5 s it prints what went each way, then
                                  holds the stream HOLD_S seconds more
  h2ws.py idle PORT HOLD_S [pong] extended CONNECT to /ws, then nothing
                                  sent for up to HOLD_S seconds (with pong:
                                  corral's pings answered, nothing else):
                                  the pings, corral's close code and when
                                  it came (ms), and how the stream ended;
                                  the close frame is answered

Each prints one JSON line on stdout. Exit 0 when it ran, 2 when it could
not connect. Only ever connects to 127.0.0.1 (TLS, ALPN h2, SNI
edge.test, the test CA not checked); every loop is bounded in count and
time.
"""
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
import h2.settings

HOST, SNI = "127.0.0.1", "edge.test"
DEADLINE_S = 40


def connect(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    try:
        raw = socket.create_connection((HOST, port), timeout=5)
    except OSError as e:
        print(json.dumps({"error": str(e)}), flush=True)
        sys.exit(2)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s = ctx.wrap_socket(raw, server_hostname=SNI)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                header_encoding="utf-8"))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    return s, conn


def recv_once(s, timeout):
    """Reads once (up to timeout): the bytes, b"" on a timeout, None when
    the server closed the connection."""
    s.settimeout(timeout)
    try:
        data = s.recv(65536)
    except (socket.timeout, ssl.SSLWantReadError):
        return b""
    except (ConnectionError, ssl.SSLError):
        return None
    return data or None


def pump(s, conn, timeout=0.5):
    """Reads once (up to timeout), returns the events; [] on a timeout,
    None when the server closed the connection."""
    data = recv_once(s, timeout)
    if not data:
        return data if data is None else []
    events = conn.receive_data(data)
    out = conn.data_to_send()
    if out:
        s.sendall(out)
    return events


RAW = bytearray()


def pump_no_goaway(s, conn, timeout=0.5):
    """pump, the server's GOAWAY kept from python3-h2 (which takes no
    frame after one, while the streams it lets finish still send): whole
    frames only are handed to it. Returns the events, [] on a timeout, None
    when the server closed the connection."""
    data = recv_once(s, timeout)
    if not data:
        return data if data is None else []
    RAW.extend(data)
    events = []
    while len(RAW) >= 9:
        n = int.from_bytes(RAW[0:3], "big") + 9
        if len(RAW) < n:
            break
        frame = bytes(RAW[:n])
        del RAW[:n]
        if frame[3] != 7:  # GOAWAY
            events += conn.receive_data(frame)
    out = conn.data_to_send()
    if out:
        s.sendall(out)
    return events


def ws_frame(opcode, payload):
    """A client frame: FIN, masked (RFC 6455 5.2, 5.3)."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if n < 65536 else \
        (int.from_bytes(payload, "big") ^ int.from_bytes((key * (n // 4 + 1))[:n], "big")
         ).to_bytes(n, "big")
    return head + key + body


def ws_parse(buf):
    """The first whole server frame in buf: (opcode, payload, rest) or None."""
    if len(buf) < 2:
        return None
    op, n, i = buf[0] & 0x0F, buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, i = struct.unpack(">H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, i = struct.unpack(">Q", buf[2:10])[0], 10
    if buf[1] & 0x80:
        i += 4  # a server never masks; skipped all the same
    if len(buf) < i + n:
        return None
    return op, buf[i:i + n], buf[i + n:]


def open_ws(s, conn, path="/ws", pumpf=pump):
    """Extended CONNECT; returns (sid, status, reset code or None)."""
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                            (":scheme", "https"), (":path", path), (":authority", SNI),
                            ("sec-websocket-version", "13"),
                            ("sec-websocket-protocol", "chat")])
    s.sendall(conn.data_to_send())
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        evs = pumpf(s, conn)
        if evs is None:
            return sid, None, "closed"
        for ev in evs:
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                return sid, int(dict(ev.headers)[":status"]), None
            if isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                return sid, None, int(ev.error_code)
    return sid, None, "timeout"


def cmd_settings(port):
    s, conn = connect(port)
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        evs = pump(s, conn)
        if evs is None:
            break
        for ev in evs:
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                print(json.dumps({str(int(k)): v.new_value
                                  for k, v in ev.changed_settings.items()}), flush=True)
                return
    print(json.dumps({"error": "no SETTINGS"}), flush=True)


def cmd_connect(port, proto, path, odd=""):
    s, conn = connect(port)
    sid = conn.get_next_available_stream_id()
    hdrs = [(":method", "CONNECT")]
    if proto != "-":
        hdrs.append((":protocol", proto))
        hdrs.append((":scheme", "https"))
    if path != "-":
        hdrs.append((":path", path))
    hdrs.append((":authority", SNI))
    if odd == "cl":
        hdrs.append(("content-length", "5"))
    # h2 refuses to send what RFC 8441 calls malformed: send it raw
    conn.config.validate_outbound_headers = False
    conn.config.normalize_outbound_headers = False
    conn.send_headers(sid, hdrs, end_stream=odd == "end")
    s.sendall(conn.data_to_send())
    out = {}
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end and not out:
        evs = pump(s, conn)
        if evs is None:
            out = {"closed": True}
        for ev in evs or []:
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                out = {"status": int(dict(ev.headers)[":status"])}
            elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                out = {"reset": int(ev.error_code)}
    print(json.dumps(out or {"error": "timeout"}), flush=True)


def cmd_echo(port, n, how):
    s, conn = connect(port)
    sid, status, reset = open_ws(s, conn)
    out = {"status": status, "reset": reset, "echoed": 0}
    if status != 200:
        print(json.dumps(out), flush=True)
        return
    buf, end = b"", time.monotonic() + DEADLINE_S
    for i in range(n):
        msg = ("message %d" % i).encode()
        conn.send_data(sid, ws_frame(1, msg))
        s.sendall(conn.data_to_send())
        got = None
        while got is None and time.monotonic() < end:
            f = ws_parse(buf)
            if f:
                op, payload, buf = f
                if op == 1:
                    got = payload
                continue
            evs = pump(s, conn)
            if evs is None:
                break
            for ev in evs:
                if isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    buf += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                    s.sendall(conn.data_to_send())
        if got != msg:
            break
        out["echoed"] = i + 1
    if how == "rst":
        conn.reset_stream(sid, 8)  # CANCEL
        s.sendall(conn.data_to_send())
        out["ended"] = "rst"
    else:
        conn.end_stream(sid)
        s.sendall(conn.data_to_send())
        while time.monotonic() < end and "ended" not in out:
            evs = pump(s, conn)
            if evs is None:
                out["ended"] = "closed"
            for ev in evs or []:
                if isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    out["ended"] = "end_stream"
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    out["ended"] = "reset %d" % ev.error_code
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    s.sendall(conn.data_to_send())
    print(json.dumps(out), flush=True)
    time.sleep(0.2)  # the RST_STREAM goes out before the close


def cmd_stall(port, nbytes, hold_s):
    s, conn = connect(port)
    sid, status, reset = open_ws(s, conn)
    out = {"status": status, "reset": reset}
    if status != 200:
        print(json.dumps(out), flush=True)
        return
    piece = 8 << 20  # under testup's 16 MB message limit
    todo = b"".join(ws_frame(2, os.urandom(min(piece, nbytes - i)))
                    for i in range(0, nbytes, piece))
    sent = received = 0
    t0 = last_move = time.monotonic()
    end = t0 + DEADLINE_S
    while time.monotonic() < end and time.monotonic() - last_move < 1.5:
        n = min(len(todo) - sent, conn.local_flow_control_window(sid),
                conn.max_outbound_frame_size)
        if n > 0:
            conn.send_data(sid, todo[sent:sent + n])
            s.sendall(conn.data_to_send())
            sent += n
            last_move = time.monotonic()
            continue
        evs = pump(s, conn, 0.2)
        if evs is None:
            out["closed"] = True
            break
        for ev in evs:
            if isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                received += len(ev.data)  # never acknowledged
                last_move = time.monotonic()
            elif isinstance(ev, (h2.events.StreamReset, h2.events.StreamEnded)):
                out["ended"] = True
    out.update({"sent": sent, "message": len(todo), "received": received,
                "ms": int((last_move - t0) * 1000)})
    print(json.dumps(out), flush=True)
    end = time.monotonic() + hold_s
    while time.monotonic() < end:  # still not reading the stream
        if pump(s, conn, 0.2) is None:
            break


def cmd_idle(port, hold_s, pong):
    s, conn = connect(port)
    sid, status, reset = open_ws(s, conn, pumpf=pump_no_goaway)
    out = {"status": status, "reset": reset, "pings": 0}
    if status is None:
        print(json.dumps(out), flush=True)
        return
    buf, t0 = b"", time.monotonic()
    end = t0 + min(hold_s, DEADLINE_S)
    while time.monotonic() < end:
        f = ws_parse(buf) if status == 200 else None  # a refusal's body is no frame
        if f:
            op, payload, buf = f
            if op == 9:
                out["pings"] += 1
                if pong:
                    conn.send_data(sid, ws_frame(10, payload))
                    s.sendall(conn.data_to_send())
            elif op == 8:
                out["close_code"] = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 0
                out["close_ms"] = int((time.monotonic() - t0) * 1000)
                if "ended" not in out:
                    conn.send_data(sid, ws_frame(8, payload[:2]))
                    s.sendall(conn.data_to_send())
            continue
        if "ended" in out:
            break  # what came before the end is read
        evs = pump_no_goaway(s, conn, 0.2)
        if evs is None:
            out["ended"] = "closed"
        for ev in evs or []:
            if isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                buf += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                s.sendall(conn.data_to_send())
            elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                out["ended"] = "end_stream"
            elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                out["ended"] = "reset %d" % ev.error_code
    out["ms"] = int((time.monotonic() - t0) * 1000)
    print(json.dumps(out), flush=True)


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "settings":
        cmd_settings(port)
    elif cmd == "connect":
        cmd_connect(port, sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else "")
    elif cmd == "echo":
        cmd_echo(port, int(sys.argv[3]), sys.argv[4])
    elif cmd == "stall":
        cmd_stall(port, int(sys.argv[3]), float(sys.argv[4]))
    elif cmd == "idle":
        cmd_idle(port, float(sys.argv[3]), len(sys.argv) > 4 and sys.argv[4] == "pong")
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
