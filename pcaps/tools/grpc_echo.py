#!/usr/bin/python3
"""gRPC server and client for pcaps/grpc.pcap (make_msg_pcaps.sh).

Service `flowtrail.test.Echo`, insecure (h2c), no generated code: the
handlers are generic handlers with identity (bytes) serializers.  Every
message is a one-field protobuf message `{ string text = 1; }`, encoded here
by hand (tag 0x0a, varint length, UTF-8 bytes) so that protobuf dissectors
see a valid message.

    grpc_echo.py server --bind 10.99.53.20 --port 50051 [--timeout 60]
    grpc_echo.py client --target 10.99.53.20:50051

Methods (all under /flowtrail.test.Echo/):
    Say      unary          -> "hello, <text>"                  (grpc-status 0)
    Missing  unary          -> NOT_FOUND  "no such item: <text>" (grpc-status 5)
    Fail     unary          -> INTERNAL   "backend exploded"     (grpc-status 13)
    Stream   server stream  -> "<text> #1", "#2", "#3"           (grpc-status 0)
    Collect  client stream  <- 2 messages, -> "got 2: a+b"       (grpc-status 0)

The client makes exactly these five calls, in this order, on one channel
(one TCP connection), prints one line per call and exits non-zero if any
result differs from the above.  The server exits by itself after --timeout.
"""

import argparse
import sys
import time
from concurrent import futures

import grpc

SERVICE = "flowtrail.test.Echo"


def enc(text):
    """A protobuf message with one string field 1."""
    b = text.encode()
    n = len(b)
    var = bytearray()
    while True:
        if n < 0x80:
            var.append(n)
            break
        var.append((n & 0x7F) | 0x80)
        n >>= 7
    return b"\x0a" + bytes(var) + b


def dec(msg):
    """Inverse of enc (only what enc makes)."""
    if not msg or msg[0] != 0x0A:
        return "?"
    n, shift, i = 0, 0, 1
    while i < len(msg):
        c = msg[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            break
    return msg[i:i + n].decode(errors="replace")


def ident(x):
    return x


def say(req, ctx):
    return enc("hello, " + dec(req))


def missing(req, ctx):
    ctx.abort(grpc.StatusCode.NOT_FOUND, "no such item: " + dec(req))


def fail(req, ctx):
    ctx.abort(grpc.StatusCode.INTERNAL, "backend exploded")


def stream(req, ctx):
    t = dec(req)
    for i in range(1, 4):
        yield enc("%s #%d" % (t, i))


def collect(it, ctx):
    parts = [dec(m) for m in it]
    return enc("got %d: %s" % (len(parts), "+".join(parts)))


def server(a):
    h = grpc.method_handlers_generic_handler(SERVICE, {
        "Say": grpc.unary_unary_rpc_method_handler(say, ident, ident),
        "Missing": grpc.unary_unary_rpc_method_handler(missing, ident, ident),
        "Fail": grpc.unary_unary_rpc_method_handler(fail, ident, ident),
        "Stream": grpc.unary_stream_rpc_method_handler(stream, ident, ident),
        "Collect": grpc.stream_unary_rpc_method_handler(collect, ident, ident),
    })
    s = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    s.add_generic_rpc_handlers((h,))
    s.add_insecure_port("%s:%d" % (a.bind, a.port))
    s.start()
    print("listening on %s:%d" % (a.bind, a.port), flush=True)
    s.wait_for_termination(timeout=a.timeout)
    s.stop(grace=0)


def client(a):
    ok = True

    def check(name, got, want):
        nonlocal ok
        print("%-8s %s" % (name, got), flush=True)
        if got != want:
            print("  expected %s" % (want,), flush=True)
            ok = False

    opts = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)]
    with grpc.insecure_channel(a.target, options=opts) as ch:
        m = "/%s/" % SERVICE
        uu = lambda n: ch.unary_unary(m + n, request_serializer=ident, response_deserializer=ident)
        md = (("x-request-id", "grpc-req-0001"),)

        r = uu("Say")(enc("flowtrail"), timeout=5, metadata=md)
        check("Say", ("OK", dec(r)), ("OK", "hello, flowtrail"))

        for name, arg in (("Missing", "item-42"), ("Fail", "x")):
            try:
                uu(name)(enc(arg), timeout=5)
                check(name, "OK", "an error")
            except grpc.RpcError as e:
                got = (e.code().name, e.details())
                want = {"Missing": ("NOT_FOUND", "no such item: item-42"),
                        "Fail": ("INTERNAL", "backend exploded")}[name]
                check(name, got, want)

        us = ch.unary_stream(m + "Stream", request_serializer=ident, response_deserializer=ident)
        got = [dec(x) for x in us(enc("tick"), timeout=5)]
        check("Stream", got, ["tick #1", "tick #2", "tick #3"])

        su = ch.stream_unary(m + "Collect", request_serializer=ident, response_deserializer=ident)
        r = su(iter([enc("a"), enc("b")]), timeout=5)
        check("Collect", dec(r), "got 2: a+b")
        time.sleep(0.2)
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, default=50051)
    s.add_argument("--timeout", type=float, default=60)
    c = sub.add_parser("client")
    c.add_argument("--target", required=True)
    a = p.parse_args()
    if a.cmd == "server":
        server(a)
        return 0
    return client(a)


if __name__ == "__main__":
    sys.exit(main())
