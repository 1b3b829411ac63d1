#!/usr/bin/python3
"""Upstream HTTP server behind nginx for pcaps/make_l7_pcaps.sh.

Python's http.server (ThreadingHTTPServer, HTTP/1.0 replies as Python's
BaseHTTPRequestHandler sends by default).  Standard library only.

  GET /slow...   sleeps --slow seconds, then answers 200 (nginx has given up
                 by then, so this answer meets a closed connection)
  GET anything else answers 200 at once with a small JSON body that echoes
                 the X-Request-ID header nginx added

Every answer is logged to stdout as "sent PATH STATUS" (or "failed PATH ..."
when the peer had closed the connection), which the script waits for.
The server exits by itself after --timeout seconds.
"""
import argparse
import http.server
import json
import sys
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "upstream.py/1"
    slow = 3.0
    wbufsize = -1  # buffered: headers and body leave in one write (flush)

    def log_message(self, fmt, *args):  # one line per request on stdout
        print("request " + (fmt % args), flush=True)

    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(self.slow)
        body = (
            json.dumps(
                {"path": self.path, "request_id": self.headers.get("X-Request-ID", "")},
                separators=(",", ":"),
            )
            + "\n"
        ).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            print(f"sent {self.path} 200", flush=True)
        except OSError as e:  # nginx closed the connection before the answer
            print(f"failed {self.path} {e.__class__.__name__}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--slow", type=float, default=3.0, help="delay of /slow answers in seconds")
    p.add_argument("--timeout", type=float, default=60.0, help="lifetime of the server in seconds")
    a = p.parse_args()
    Handler.slow = a.slow
    srv = http.server.ThreadingHTTPServer((a.bind, a.port), Handler)
    srv.daemon_threads = True
    threading.Timer(a.timeout, srv.shutdown).start()
    print(f"listening on {a.bind}:{a.port}", flush=True)
    srv.serve_forever()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
