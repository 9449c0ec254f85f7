"""The development server behind ``kb serve``: take the port first, then start kb, then serve.

The listening socket is opened before the app is built, so a busy port is reported at once,
before the slow start-up work (migrations, the index, jieba) and before anything announces
success; the server then serves on that very socket, so nothing can take the port in between.
"""

from __future__ import annotations

import errno
import socket
from typing import Callable

from flask import Flask
from werkzeug.serving import LISTEN_QUEUE, get_sockaddr, make_server, select_address_family

from kb.errors import KBError


class ServeError(KBError):
    """The development server cannot listen where it was asked to."""


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``; ServeError saying what to do if it cannot be had."""
    family = select_address_family(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    # Like werkzeug: a port left in TIME_WAIT by a stopped server can be reused, a live one cannot.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(get_sockaddr(host, port, family))
        sock.listen(LISTEN_QUEUE)
    except OSError as exc:
        sock.close()
        raise ServeError(_cannot_listen(host, port, exc)) from exc
    return sock


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    """Why the port cannot be had, and which option to change."""
    if exc.errno == errno.EADDRINUSE:
        return (f"Port {port} on {host} is already in use, perhaps by another kb serve. Stop that program, "
                f"or start kb on a free port with --port, for example: kb serve --port {_other_port(port)}")
    if exc.errno == errno.EACCES:
        return (f"Not allowed to listen on port {port} (ports below 1024 need root). "
                "Choose another port with --port, for example: kb serve --port 5000")
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return (f"Cannot listen on {host}: it is not an address of this machine. Use --host 127.0.0.1 "
                "(this machine only) or --host 0.0.0.0 (every network)")
    return f"Cannot listen on {host} port {port}: {exc.strerror or exc}. Choose another --host or --port"


def _other_port(port: int) -> int:
    """A port number to suggest instead of a busy one."""
    return port + 1 if port < 65535 else 5000


def url(host: str, port: int) -> str:
    """The address people open in a browser."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(app: Flask, sock: socket.socket, host: str, port: int, *, debug: bool,
          announce: Callable[[str], None]) -> None:
    """Serve ``app`` on ``sock`` (from ``listen(host, port)``) until Ctrl+C; ``announce`` it once ready."""
    wsgi = app
    if debug:
        from werkzeug.debug import DebuggedApplication

        app.debug = True
        wsgi = DebuggedApplication(app, evalex=True)
    server = make_server(host, port, wsgi, threaded=True, fd=sock.fileno())
    announce(f"kb is serving on {url(host, port)} (press Ctrl+C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
