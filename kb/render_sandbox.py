"""Markdown rendered in a child process with a hard time limit.

Python-Markdown is pure Python: a thread cannot be stopped from outside, and SIGALRM works only
in the main thread (the indexer and threaded servers render elsewhere). A child process can be
killed at any moment, and whatever goes wrong in it (deep recursion, a slow regular expression,
running out of memory, a crash in a C extension) cannot harm the web worker. Children are kept
and reused, so a render costs one round trip through a pipe (well under a millisecond), not a
new process; a child is started (about 0.2 s) only for a process's first render and after a
kill. ``python -m kb.render_sandbox`` is the child's side.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from kb.errors import KBError

READY = b"kb-render-ready\n"
START_TIMEOUT = 30.0  # a child's imports, on a busy machine; not part of the render time limit
MAX_IDLE = 2
MEMORY_LIMIT = 1024 * 1024 * 1024  # address space of a child, so one article cannot exhaust memory
_HEADER = struct.Struct(">Q")


class SandboxError(KBError):
    """The child process could not render the text."""


class SandboxTimeout(SandboxError):
    """The render went over the time limit and the child was killed.

    ``busy`` is true when the child got little CPU time meanwhile: the machine was busy, so the
    same text may well render in time on a later try.
    """

    def __init__(self, message: str, busy: bool):
        super().__init__(message)
        self.busy = busy


class SandboxFailed(SandboxError):
    """Rendering failed in the child; the message is the kind (recursion, memory, crashed or a class name)."""


class SandboxGone(SandboxError):
    """The child had stopped before it was sent the text (killed from outside): a new one can take it."""


class Child:
    """One renderer process and its pipes."""

    def __init__(self):
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "kb.render_sandbox"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env)
        except OSError as exc:  # no interpreter to run, no processes left, no memory to fork
            raise SandboxError(f"the renderer process could not be started ({exc})") from exc
        try:
            ready = _read_exact(self.proc.stdout.fileno(), len(READY), time.monotonic() + START_TIMEOUT)
        except (SandboxError, TimeoutError) as exc:
            self.kill()
            raise SandboxError("the renderer process did not start in time") from exc
        if ready != READY:
            self.kill()
            raise SandboxError("the renderer process did not start")

    def render(self, text: str, limit: float) -> dict:
        """Send ``text``; the child's reply (see ``serve``), or SandboxTimeout after ``limit`` s."""
        payload = text.encode("utf-8", "surrogatepass")
        cpu_before = self._cpu_seconds()
        try:
            self.proc.stdin.write(_HEADER.pack(len(payload)) + payload)
            self.proc.stdin.flush()
        except OSError as exc:
            raise SandboxGone(f"the renderer process had stopped ({exc})") from exc
        deadline = time.monotonic() + limit
        fd = self.proc.stdout.fileno()
        try:
            size = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))[0]
            return json.loads(_read_exact(fd, size, deadline))
        except TimeoutError:
            used = self._cpu_seconds() - cpu_before
            raise SandboxTimeout(f"rendering took longer than {limit:g} s", busy=used < limit / 2) from None
        except SandboxError as exc:  # it died while rendering this very text
            raise SandboxFailed("crashed") from exc

    def _cpu_seconds(self) -> float:
        """CPU time the child has used so far (from /proc; 0 where there is none)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def kill(self) -> None:
        """Stop the child at once and reap it."""
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.forget()

    def forget(self) -> None:
        """Close this process's ends of the pipes (after a fork they belong to the parent)."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def _read_exact(fd: int, size: int, deadline: float) -> bytes:
    """Read ``size`` bytes from ``fd`` by ``deadline``; TimeoutError or SandboxError otherwise."""
    chunks, remaining = [], size
    while remaining:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([fd], [], [], wait)[0]:
            raise TimeoutError
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise SandboxError("the renderer process stopped")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class Pool:
    """Idle children of this process; each render takes one for itself and gives it back."""

    def __init__(self):
        self._idle: list[Child] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def render(self, text: str, limit: float) -> dict:
        """Render in a child: ``{"html", "text"}``, or ``{"problem"}`` when a shape limit refused the text.

        SandboxTimeout, SandboxFailed or SandboxError when rendering failed.
        """
        for attempt in (1, 2):
            child = self._checkout()
            try:
                reply = child.render(text, limit)
                break
            except SandboxGone:
                child.kill()  # an idle child killed from outside: take a new one, once
                if attempt == 2:
                    raise
            except BaseException:
                child.kill()  # it may be mid-render: never hand it out again
                self._start_spare()
                raise
        if reply.get("error") == "memory":
            child.kill()  # a child that ran out of memory may be left in a bad state
            self._start_spare()
        else:
            self._checkin(child)
        if reply.get("error"):
            raise SandboxFailed(reply["error"])
        return reply

    def _start_spare(self) -> None:
        """Start a child in the background, so the render after a kill does not wait for one."""
        def start():
            try:
                self._checkin(Child())
            except SandboxError:
                pass  # the next render starts one itself, and reports the failure

        threading.Thread(target=start, name="kb-render-spare", daemon=True).start()

    def _checkout(self) -> Child:
        """An idle child, or a new one."""
        with self._lock:
            if self._pid != os.getpid():  # forked (e.g. a gunicorn worker): the children are the parent's
                for child in self._idle:
                    child.forget()
                self._idle, self._pid = [], os.getpid()
            while self._idle:
                child = self._idle.pop()
                if child.proc.poll() is None:
                    return child
                child.forget()  # killed from outside while idle (and now reaped)
        return Child()

    def _checkin(self, child: Child) -> None:
        """Keep the child for the next render, unless enough are idle already."""
        with self._lock:
            if len(self._idle) < MAX_IDLE and self._pid == os.getpid():
                self._idle.append(child)
                return
        child.kill()

    def close(self) -> None:
        """Stop the idle children (at exit)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.kill() if self._pid == os.getpid() else child.forget()


POOL = Pool()
atexit.register(POOL.close)


def serve(stdin=None, stdout=None) -> None:
    """The child's loop: read a text, write its rendering, until the parent closes the pipe.

    A reply is ``{"html", "text"}``, ``{"problem"}`` (a shape limit, with advice for the agent)
    or ``{"error"}`` (what was raised).
    """
    from kb.render_limits import shape_problem
    from kb.rendering import html_to_text, markdown_to_html

    stdin, stdout = stdin or sys.stdin.buffer, stdout or sys.stdout.buffer
    stdout.write(READY)
    stdout.flush()
    while True:
        header = stdin.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return  # the parent is gone or done with us
        text = stdin.read(_HEADER.unpack(header)[0]).decode("utf-8", "surrogatepass")
        try:
            problem = shape_problem(text)
            if problem:
                reply = {"problem": problem}
            else:
                html = markdown_to_html(text)
                reply = {"html": html, "text": html_to_text(html)}
        except RecursionError:
            reply = {"error": "recursion"}
        except MemoryError:
            reply = {"error": "memory"}
        except Exception as exc:  # noqa: BLE001 - any failure is reported, the loop goes on
            reply = {"error": type(exc).__name__}
        body = json.dumps(reply).encode()
        stdout.write(_HEADER.pack(len(body)) + body)
        stdout.flush()


def _limit_child() -> None:
    """Bound the child's memory, and leave Ctrl-C to the parent (which ends us by closing the pipe)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass


if __name__ == "__main__":
    _limit_child()
    try:
        serve()
    except BrokenPipeError:
        pass  # the parent went away (a worker exiting): nothing to answer
