#!/usr/bin/python3
"""An HTTP server that resets every other connection, for
pcaps/make_story_pcaps.sh (story_timeout).  Standard library only.

  reset_server.py --bind ADDR --port PORT [--every 2] [--timeout S]

Connections are served one at a time, in the order they are accepted,
numbered from 1.  For each, the server reads the request head (up to the
blank line, at most 2 s), then:

  number % EVERY == 0   sets SO_LINGER {on, 0} and closes: the kernel
                        throws away the socket and sends RST instead of FIN
                        (the client sees "Connection reset by peer")
  otherwise             answers "HTTP/1.1 200 OK" with a small JSON body
                        and "Connection: close", then closes normally (FIN)

One line per connection on stdout:
  conn N <epoch> <peer ip>:<port> <method> <path> -> reset|200|no-request
The server exits after --timeout seconds or --max-conns connections.
"""
import argparse
import socket
import struct
import sys
import time


def read_head(conn, limit=2.0):
    conn.settimeout(limit)
    data = b""
    try:
        while b"\r\n\r\n" not in data and len(data) < 16384:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, OSError):
        pass
    return data


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--every", type=int, default=2, help="reset connection N when N %% EVERY == 0")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--max-conns", type=int, default=1000)
    args = p.parse_args()

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.bind, args.port))
    srv.listen(16)
    print(f"listening {args.bind}:{args.port} reset every {args.every}", flush=True)
    end = time.monotonic() + args.timeout
    n = 0
    while n < args.max_conns:
        left = end - time.monotonic()
        if left <= 0:
            break
        srv.settimeout(left)
        try:
            conn, peer = srv.accept()
        except socket.timeout:
            break
        n += 1
        head = read_head(conn)
        line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        method, path = (line[0], line[1]) if len(line) >= 2 else ("-", "-")
        if not head:
            action = "no-request"
            conn.close()
        elif n % args.every == 0:
            action = "reset"
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        else:
            action = "200"
            body = b'{"partner":"resetting","ok":true}\n'
            conn.sendall(b"HTTP/1.1 200 OK\r\nServer: reset_server.py\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            try:
                conn.shutdown(socket.SHUT_WR)
                conn.settimeout(2.0)
                while conn.recv(4096):  # until the client's FIN
                    pass
            except OSError:
                pass
            conn.close()
        print(f"conn {n} {time.time():.6f} {peer[0]}:{peer[1]} {method} {path} -> {action}", flush=True)
    srv.close()
    print(f"done after {n} connections", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
