"""A load client that costs the shared cores little: one thread, non-blocking sockets, one request per connection.

benchmarks/load.py's first client (a thread per client, stdlib http.client) cost 0.2-0.6 ms of CPU
a request, and all its threads share one interpreter lock; on a 2-core machine what it spent was
taken from the server (`/healthz` 3,155 req/s with it, 4,592 with this one, measured in turn). This one keeps ``clients`` connections in flight from a single selector loop, sends each
request as prebuilt bytes with ``Connection: close`` (gunicorn's sync workers close after every
response anyway) and reads until the server closes, keeping only the status line. A latency is
from the connect to the last byte.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from dataclasses import dataclass, field

TIMEOUT = 30.0  # seconds a request may take before it counts as an error


@dataclass
class Outcome:
    """What one drive measured: latencies of answered requests (status < 400), errors, the first error."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""


@dataclass
class _Request:
    """One request in flight."""

    sock: socket.socket
    path: str
    payload: bytes
    started: float
    head: bytes = b""


def _status(head: bytes) -> int:
    """The HTTP status of a response's first bytes, 0 when there is none."""
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() else 0


def drive(host: str, port: int, paths: list[str], clients: int, seconds: float) -> Outcome:
    """Send each path once, ``clients`` at a time, until done or ``seconds`` have passed."""
    out, selector, queue = Outcome(), selectors.DefaultSelector(), iter(paths)
    deadline = time.monotonic() + seconds
    template = f"GET {{}} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"

    def fail(request: _Request, why: str) -> None:
        out.errors += 1
        out.first_error = out.first_error or f"{request.path}: {why}"

    def start() -> None:
        """Open the next request's connection; a refused one counts as an error and the next is tried."""
        while time.monotonic() < deadline and (path := next(queue, None)) is not None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            request = _Request(sock, path, template.format(path).encode("ascii"), time.perf_counter())
            code = sock.connect_ex((host, port))
            if code in (0, errno.EINPROGRESS, errno.EAGAIN):
                # connected at once on loopback, mostly: then writable at the first select
                selector.register(sock, selectors.EVENT_WRITE, request)
                return
            sock.close()
            fail(request, errno.errorcode.get(code, str(code)))

    def finish(request: _Request, error: str = "") -> None:
        selector.unregister(request.sock)
        request.sock.close()
        status = _status(request.head)
        if error or not 0 < status < 400:
            fail(request, error or f"status {status or 'missing'}")
        else:
            out.latencies.append(time.perf_counter() - request.started)
        start()

    for _ in range(clients):
        start()
    checked = time.perf_counter()
    while selector.get_map():
        for key, events in selector.select(timeout=1.0):
            request = key.data
            try:
                if events & selectors.EVENT_WRITE:
                    code = request.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code:
                        finish(request, errno.errorcode.get(code, str(code)))
                        continue
                    request.sock.sendall(request.payload)  # a few hundred bytes: the buffer takes them at once
                    selector.modify(request.sock, selectors.EVENT_READ, request)
                    continue
                data = request.sock.recv(65536)
            except OSError as exc:
                finish(request, repr(exc))
                continue
            if not data:
                finish(request)
            elif len(request.head) < 16:
                request.head += data[:16]
        now = time.perf_counter()
        if now - checked > 1.0:
            checked = now
            for key in list(selector.get_map().values()):
                if now - key.data.started > TIMEOUT:
                    finish(key.data, "timed out")
    return out
