"""A webhook receiver for tests and benchmarks: an HTTP server in a thread that records every POST."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.servers import free_port


class WebhookServer:
    """An HTTP server in a thread that records every POST and answers with the statuses it is given."""

    def __init__(self) -> None:
        self.posts: list[dict] = []  # {"at": monotonic, "status": int, "json": body}
        self.statuses: list[int] = []  # answered in order; 200 once they run out
        self.delay = 0.0
        self._arrived = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(server.delay)
                with server._arrived:
                    status = server.statuses.pop(0) if server.statuses else 200
                    server.posts.append({"at": time.monotonic(), "status": status, "json": json.loads(body),
                                         "content_type": self.headers.get("Content-Type")})
                    server._arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hooks/kb"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        """Block until ``count`` POSTs arrived, or fail."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.posts) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} POSTs at the webhook, got {len(self.posts)}")
                self._arrived.wait(left)
            return list(self.posts)

    def stop(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def webhook_server():
    """A webhook receiver for one test."""
    server = WebhookServer()
    yield server
    server.stop()
