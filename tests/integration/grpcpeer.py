#!/usr/bin/env python3
"""grpcpeer.py - a real gRPC server and client (python3-grpcio, generic
handlers with bytes in and out: no protoc) for check_grpc.

  grpcpeer.py serve PORT CERTS
      A TLS gRPC server on 127.0.0.1:PORT with CERTS/lb.crt, requiring a
      client certificate from CERTS/ca.crt (corral's upstream TLS). Service
      t.T: Unary (echoes the request, trailing metadata x-trail: done),
      Stream (50 messages 40 ms apart), NotFound (status NOT_FOUND with a
      message). Prints "listening" once it serves; runs until killed.

  grpcpeer.py call PORT CERTS WHAT [TENANT]
      One client over TLS to corral on 127.0.0.1:PORT (edge.test, CERTS/
      ca.crt), retries off, x-tenant-id: TENANT when given. WHAT: unary,
      stream, notfound, shed (unary calls, at most 20, until one is
      refused). Prints one JSON line: code, details, trailing metadata,
      and for stream the count and the arrival times (s since the call).
      Every call has a deadline: the whole run ends within about 30 s.
"""
import json
import sys
import time

import grpc

N_MSGS = 50
GAP_S = 0.04


def ident(b):
    return b


def serve(port, certs):
    def unary(req, ctx):
        ctx.set_trailing_metadata((("x-trail", "done"),))
        return req

    def stream(req, ctx):
        for i in range(N_MSGS):
            yield b"msg %d" % i
            time.sleep(GAP_S)

    def notfound(req, ctx):
        ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing: 100% gone")

    h = grpc.method_handlers_generic_handler("t.T", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, ident, ident),
        "Stream": grpc.unary_stream_rpc_method_handler(stream, ident, ident),
        "NotFound": grpc.unary_unary_rpc_method_handler(notfound, ident, ident),
    })
    from concurrent import futures
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    srv.add_generic_rpc_handlers((h,))
    rd = lambda n: open("%s/%s" % (certs, n), "rb").read()
    creds = grpc.ssl_server_credentials([(rd("lb.key"), rd("lb.crt"))],
                                        root_certificates=rd("ca.crt"),
                                        require_client_auth=True)
    srv.add_secure_port("127.0.0.1:%d" % port, creds)
    srv.start()
    print("listening", flush=True)
    srv.wait_for_termination(timeout=300)


def call(port, certs, what, tenant):
    ca = open("%s/ca.crt" % certs, "rb").read()
    ch = grpc.secure_channel("127.0.0.1:%d" % port, grpc.ssl_channel_credentials(ca),
                             options=(("grpc.ssl_target_name_override", "edge.test"),
                                      ("grpc.enable_retries", 0)))
    md = (("x-tenant-id", tenant),) if tenant else None
    out = {"what": what}

    def result(code, details, trailing):
        out["code"] = code.name
        out["details"] = details
        out["trailing"] = {k: v for k, v in (trailing or ())}

    try:
        if what == "stream":
            f = ch.unary_stream("/t.T/Stream", ident, ident)
            t0 = time.monotonic()
            it = f(b"go", metadata=md, timeout=20)
            times = []
            try:
                for m in it:
                    times.append(round(time.monotonic() - t0, 3))
            except grpc.RpcError:
                pass  # its code says which
            out["count"] = len(times)
            out["times"] = times
            result(it.code(), it.details(), it.trailing_metadata())
        elif what in ("unary", "notfound"):
            f = ch.unary_unary("/t.T/" + ("Unary" if what == "unary" else "NotFound"), ident, ident)
            try:
                resp, c = f.with_call(b"hello grpc", metadata=md, timeout=10)
                out["response"] = resp.decode()
                result(c.code(), c.details(), c.trailing_metadata())
            except grpc.RpcError as e:
                result(e.code(), e.details(), e.trailing_metadata())
        elif what == "shed":
            f = ch.unary_unary("/t.T/Unary", ident, ident)
            out["calls"] = 0
            for _ in range(20):
                out["calls"] += 1
                try:
                    f(b"x", metadata=md, timeout=5)
                except grpc.RpcError as e:
                    result(e.code(), e.details(), e.trailing_metadata())
                    break
    finally:
        ch.close()
    print(json.dumps(out), flush=True)


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) >= 5 and sys.argv[1] == "call":
        call(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
