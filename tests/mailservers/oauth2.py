"""A token introspection endpoint (RFC 7662) for Dovecot's oauth2 passdb, so XOAUTH2 is tested for real."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Callable
from urllib.parse import parse_qs

DOVECOT_OAUTH2_CONF = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""


class TokenIntrospection:
    """Answers Dovecot's POST token=... with {"active": true, "username": ...} for tokens ``owner_of`` knows."""

    def __init__(self, owner_of: Callable[[str], str | None]) -> None:
        self.owner_of = owner_of
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where Dovecot posts the tokens."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/introspect"

    def start(self) -> None:
        """Serve from a thread on a free loopback port."""
        owner_of = self.owner_of

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's hook name)
                length = int(self.headers.get("Content-Length") or 0)
                token = parse_qs(self.rfile.read(length).decode()).get("token", [""])[0]
                user = owner_of(token)
                body = json.dumps({"active": True, "username": user} if user else {"active": False}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                """Keep the test output quiet."""

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="oauth2-introspection", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = self._thread = None
