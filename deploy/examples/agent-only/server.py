"""An app that serves HTTPS itself with the agent's tls.crt and tls.key.

It loads the pair for every new connection, so a certificate the agent renews is served from
the next handshake on, without a restart or a signal. Until the agent has written the first
pair it waits for it.
"""

import http.server
import os
import signal
import ssl
import sys
import time

CERT = "/etc/tls/tls.crt"
KEY = "/etc/tls/tls.key"
LISTEN = ("0.0.0.0", 8443)


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello world\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        print("%s %s" % (self.address_string(), format % args), flush=True)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def get_request(self):
        sock, address = self.socket.accept()
        # The handshake happens in the connection's thread, not in the accept loop.
        return load_pair().wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address


def load_pair():
    """A server context with the pair on disk now.

    The agent replaces the key, then the certificate: a load between the two finds a key that
    does not match and is tried again a moment later.
    """
    for attempt in range(50):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(CERT, KEY)
            return context
        except (ssl.SSLError, OSError):
            if attempt == 49:
                raise
            time.sleep(0.1)


# The kubelet stops a container with SIGTERM: exit 0, as a clean shutdown.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while not (os.path.exists(CERT) and os.path.exists(KEY)):
    time.sleep(0.2)
print("serving https on %s:%d with %s" % (LISTEN + (CERT,)), flush=True)
Server(LISTEN, Hello).serve_forever()
