#!/usr/bin/env python3
# A loopback SMTP server for the agent tests that requires STARTTLS and a login
# (aiosmtpd's CLI cannot): one file per message in MAILDIR/new.
# usage: smtp_auth_server.py PORT MAILDIR CERT KEY USER PASSWORD
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

port, maildir, cert, key, user, password = sys.argv[1:7]


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == user.encode()
          and auth_data.password == password.encode())
    # handled=False: aiosmtpd sends the 535 reply itself.
    return AuthResult(success=ok, handled=False)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
controller = Controller(Mailbox(maildir), hostname="127.0.0.1", port=int(port),
                        tls_context=ctx, require_starttls=True,
                        authenticator=authenticator, auth_required=True)
controller.start()
threading.Event().wait()
