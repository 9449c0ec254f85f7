"""Waiting for something a real server does (poll until true, or until the server is gone), and ending one."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from typing import Callable


def poll(predicate: Callable, timeout: float, interval: float = 0.1, gone: Callable[[], bool] = lambda: False):
    """``predicate()``'s first truthy value within ``timeout`` s (connection errors count as no), else None.

    ``gone`` is asked between tries: once true (the server died), waiting longer is pointless.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, urllib.error.URLError):
            value = None
        if value:
            return value
        if gone():
            return None
        time.sleep(interval)
    return None


def end(proc, seconds: float) -> None:
    """SIGTERM a child process, as a service manager would, and SIGKILL it if it has not ended in ``seconds``."""
    proc.terminate()
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def http_get(url: str, opener=None) -> tuple[int, str]:
    """(status, body) of a GET to a test server; an error status is an answer, not an exception."""
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
