#!/usr/bin/env python3
# A lab host's service (tests/host/flake): one HTTP listener on 127.0.0.1, run by a systemd unit
# the host's system declares. usage: service.py PORT STATUS BODY START_DELAY_S
# It listens only after START_DELAY_S seconds, as a Type=simple service with a migration would.
import http.server
import sys
import time

# usage: service.py crash MSG: 3 s after it started, it logs MSG and exits 1 (a service that
# starts, then finds its configuration broken).
if len(sys.argv) == 3 and sys.argv[1] == "crash":
    time.sleep(3)
    print("lab-service: " + sys.argv[2], file=sys.stderr, flush=True)
    sys.exit(1)

# BODY @PATH: PATH's content, read once at start ("no-secret" when missing), as a service reads
# its secret when it starts.
port, status, body, delay = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
if body.startswith("@"):
    try:
        with open(body[1:]) as f:
            body = f.read().strip()
    except OSError:
        body = "no-secret"
body = body.encode()
time.sleep(delay)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
