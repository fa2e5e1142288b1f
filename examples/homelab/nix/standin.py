#!/usr/bin/env python3
# Loopback stand-ins for a demo host's services: for every health probe in the
# host's rendered inputs (services.<name>.health), listen where the probe looks
# (HTTP: answer its path with the expected status and body; TCP: accept).
# A service whose settings say `demo_fail: true` answers 503 instead: the
# "breaking commit" of the demo. --describe prints what would be served.
# usage: standin.py [--pidfile FILE] CONFIG | standin.py --describe CONFIG
# It writes its own pid (so switch-to-configuration stops exactly this process)
# and exits when it cannot listen somewhere: a port held by another process
# must not pass for this service.
import http.server
import json
import os
import socketserver
import sys
import threading
import urllib.parse


def endpoints(inputs):
    """{(addr, port): {"paths": {path: (status, body)}, "services": set}}"""
    out = {}
    for name, svc in sorted((inputs.get("services") or {}).items()):
        failing = bool((svc.get("settings") or {}).get("demo_fail"))
        for kind in ("startup", "liveness"):
            for probe in (svc.get("health") or {}).get(kind) or []:
                if probe.get("http"):
                    u = urllib.parse.urlsplit(probe["http"]["url"])
                    key = (u.hostname, u.port or 80)
                    status = probe["http"].get("status") or 200
                    body = probe["http"].get("body") or ("" if status == 204 else "ok")
                    if failing:
                        status, body = 503, "%s: failing (demo_fail is set)" % name
                    ep = out.setdefault(key, {"paths": {}, "services": set()})
                    ep["paths"].setdefault(u.path or "/", (status, body))
                    ep["services"].add(name)
                elif probe.get("tcp") and not failing:
                    key = (probe["tcp"]["host"], int(probe["tcp"]["port"]))
                    out.setdefault(key, {"paths": {}, "services": set()})["services"].add(name)
    return out


def serve(addr, port, paths):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            path = urllib.parse.urlsplit(self.path).path
            status, body = paths.get(path, (200, "ok"))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            if status != 204:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if status != 204:
                self.wfile.write(data)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer.allow_reuse_address = True
    http.server.ThreadingHTTPServer.daemon_threads = True
    return http.server.ThreadingHTTPServer((addr, port), Handler)


def main():
    args = sys.argv[1:]
    inputs = json.load(open(args[-1]))
    eps = endpoints(inputs)
    if args[0] == "--describe":
        for (addr, port), ep in sorted(eps.items()):
            print("  %s on %s:%d" % (", ".join(sorted(ep["services"])), addr, port))
        return
    if args[0] == "--pidfile":
        with open(args[1] + ".tmp", "w") as fh:
            fh.write("%d\n" % os.getpid())
        os.rename(args[1] + ".tmp", args[1])
    servers = []
    for (addr, port), ep in sorted(eps.items()):
        try:
            servers.append(serve(addr, port, ep["paths"]))
        except OSError as e:
            sys.exit("standin: cannot listen on %s:%d (%s): %s"
                     % (addr, port, ", ".join(sorted(ep["services"])), e))
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
