#!/usr/bin/env python3
"""Test helper: serve the files of a directory over HTTPS on 127.0.0.1
(python's ssl module). Usage: https_server.py DIR CERT KEY PORTFILE.
Writes the chosen port to PORTFILE; serves until killed."""
import functools, http.server, os, ssl, sys

root, cert, key, portfile = sys.argv[1:5]


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=root))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
# Handshakes in the handler threads: a client that refuses the certificate
# neither stalls the accept loop nor prints a traceback.
server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
server.handle_error = lambda request, client_address: None
with open(portfile + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(portfile + ".tmp", portfile)
server.serve_forever()
