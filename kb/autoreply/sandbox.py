"""The backstop around one email's processing: a child process with a time and a memory limit.

Why a child process: a deadline inside the worker cannot stop C code (a regular expression, the
email package, numpy) and cannot cap memory; a child can be killed at the deadline and runs under
RLIMIT_AS. Why the forkserver start method: the worker has threads (numpy's BLAS pool; in tests,
the mail servers), and fork() in a threaded process can leave a lock held in the child for ever.
Forkserver children are forked from a small single-threaded server that imported kb's parsing
and matching code and loaded jieba's dictionary once (kb/autoreply/sandbox_preload.py), so a
fresh child is ready in about 10 ms. One child is kept and reused; after a timeout, a crash or a
memory failure it is killed and the next email gets a new one. The matcher is sent to the child
(pickled once per model) whenever it changes.

While the child works, the worker answers its one question ("did kb send this Message-ID?") from
the database, so the child needs no database connection.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kb.autoreply.decision import Decision
from kb.autoreply.forkserver import context, start_server
from kb.autoreply.matcher import Matcher
from kb.autoreply.processing import process_message
from kb.autoreply.sandbox_child import Limits, serve
from kb.children import main_module_hidden
from kb.errors import KBError

__all__ = ["Limits", "Outcome", "Sandbox", "SandboxError"]

START_SECONDS = 120.0  # a new child must be ready within this (the first start imports numpy & co.)
_SETTING_TYPES = (str, int, float, bool, type(None))


class SandboxError(KBError):
    """The processing process could not be started; nothing is wrong with the email."""


@dataclass
class Outcome:
    """What became of one email's processing."""

    decision: Decision | None = None
    problem: str = ""  # without a decision: why, as a "<code>: <detail>" reason for a person
    interrupted: bool = False  # the worker is stopping; nothing is wrong with the email
    seconds: float = 0.0
    # The child's CPU time for it (0 when unknown): on a busy machine, the share of ``seconds``
    # that was this email's own work rather than waiting for a core.
    cpu_seconds: float = 0.0
    peak_bytes: int = 0  # how much the child's memory grew for this email (0 when unknown)


@dataclass
class _Child:
    process: Any
    conn: Any
    ready: bool = False
    matcher: str | None = None  # fingerprint of the matcher the child holds


class Sandbox:
    """Runs ``function`` (default: process_message) on one email at a time in a child process."""

    def __init__(self, limits: Limits, stop: threading.Event,
                 function: Callable[..., Decision] = process_message) -> None:
        self.limits = limits
        self.stop = stop
        self.function = function
        self._child: _Child | None = None
        self._pickled: tuple[str, bytes] | None = None

    def run(self, raw: bytes, *, matcher: Matcher, settings: dict[str, Any],
            lookup: Callable[[str], bool], **options: Any) -> Outcome:
        """Process ``raw`` in the child within the limits; ``lookup`` answers "did kb send this ID?"."""
        if self.stop.is_set():
            return Outcome(interrupted=True)
        try:
            child = self._ready_child(matcher, settings)
            if child is None:
                return Outcome(interrupted=True)
            started = time.monotonic()
            try:
                child.conn.send(("job", raw, options))
            except OSError:
                return self._died(child, started)
            return self._await(child, lookup, started)
        except BaseException:
            self._discard()  # a half-finished exchange must never leak into the next email
            raise

    def kill(self) -> None:
        """Kill the child now (safe from a signal handler or another thread); run() then returns."""
        child = self._child
        if child is not None and child.process.pid:
            try:
                os.kill(child.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """Let the child exit (killed if it does not within two seconds)."""
        child, self._child = self._child, None
        if child is None:
            return
        try:
            child.conn.send(("quit",))
        except OSError:
            pass
        child.process.join(2)
        _end(child)

    def prepare(self) -> None:
        """Start a child (waiting for the forkserver, not for the child's warm-up)."""
        child = self._child
        if child is None or not child.process.is_alive():
            self._discard()
            self._child = self._spawn()

    def wait_ready(self) -> bool:
        """Wait until the child is ready (started if needed); False if the worker stops meanwhile."""
        self.prepare()
        child = self._child
        deadline = time.monotonic() + START_SECONDS
        while not child.ready:
            if child.conn.poll(0.1):
                child.conn.recv()  # "ready"
                child.ready = True
            elif self.stop.is_set() or not child.process.is_alive() or time.monotonic() > deadline:
                self._discard()
                if self.stop.is_set():
                    return False
                raise SandboxError(f"the process that reads emails did not start "
                                   f"(exit code {child.process.exitcode}); see the log above")
        return True

    def _ready_child(self, matcher: Matcher, settings: dict[str, Any]) -> _Child | None:
        """The ready child holding ``matcher`` and ``settings``; None if the worker stops meanwhile."""
        if not self.wait_ready():
            return None
        child = self._child
        if child.matcher is None:
            child.conn.send(("settings", {k: v for k, v in settings.items() if isinstance(v, _SETTING_TYPES)}))
        if child.matcher != matcher.fingerprint:
            if self._pickled is None or self._pickled[0] != matcher.fingerprint:
                self._pickled = (matcher.fingerprint, pickle.dumps(matcher, pickle.HIGHEST_PROTOCOL))
            child.conn.send(("matcher", self._pickled[1]))
            child.matcher = matcher.fingerprint
        return child

    def _spawn(self) -> _Child:
        """Fork a child from the forkserver (it reports "ready" once it has warmed up)."""
        start_server()
        ours, theirs = context().Pipe()
        process = context().Process(target=serve, args=(theirs, self.function, self.limits),
                                  name="kb-autoreply-sandbox", daemon=True)
        with main_module_hidden():
            process.start()
        theirs.close()
        return _Child(process, ours)

    def _await(self, child: _Child, lookup: Callable[[str], bool], started: float) -> Outcome:
        """Answer the child's questions until it reports, dies, or runs out of time."""
        deadline = started + self.limits.seconds
        while True:
            remaining = deadline - time.monotonic()
            try:
                message = child.conn.recv() if remaining > 0 and child.conn.poll(remaining) else None
            except (EOFError, OSError):
                return self._died(child, started)
            if message is None:
                self._discard()
                if self.stop.is_set():
                    return Outcome(interrupted=True)
                return Outcome(problem=f"too-slow: processing did not finish within {self.limits.seconds:g} s "
                                       f"(KB_AUTOREPLY_MESSAGE_SECONDS)", seconds=time.monotonic() - started)
            if message[0] == "sent?":
                child.conn.send(bool(lookup(message[1])))
                continue
            kind, detail, seconds, cpu, peak = message
            if kind == "done":
                return Outcome(decision=detail, seconds=seconds, cpu_seconds=cpu, peak_bytes=peak)
            self._discard()  # after any failure the next email gets a fresh child
            if kind == "too-big":
                return Outcome(problem=f"too-big: processing needed more than {self.limits.memory_bytes >> 20} MB "
                                       f"of memory (KB_AUTOREPLY_MESSAGE_MEMORY_MB)", seconds=seconds, cpu_seconds=cpu,
                               peak_bytes=peak)
            return Outcome(problem=f"error: processing failed ({detail})", seconds=seconds, cpu_seconds=cpu,
                           peak_bytes=peak)

    def _died(self, child: _Child, started: float) -> Outcome:
        """The child went away mid-email: the worker stopping it, or the email killing it."""
        child.process.join(1)
        code = child.process.exitcode
        self._discard()
        # A SIGTERM to the whole process group reaches the child too; the worker's own handler
        # may run a moment later, so give it that moment before blaming the email.
        if code in (-signal.SIGTERM, -signal.SIGINT):
            self.stop.wait(0.5)
        if self.stop.is_set():
            return Outcome(interrupted=True)
        return Outcome(problem=f"error: processing stopped: the process died ({_describe(code)})",
                       seconds=time.monotonic() - started)

    def _discard(self) -> None:
        """Kill and forget the current child, if any."""
        child, self._child = self._child, None
        if child is not None:
            _end(child)


def _end(child: _Child) -> None:
    """Make sure the child is gone and its pipe closed."""
    if child.process.is_alive():
        child.process.kill()
    child.process.join(5)
    child.conn.close()
    if child.process.exitcode is not None:
        child.process.close()


def _describe(code: int | None) -> str:
    """An exit code in words (SIGKILL from outside kb is most often the kernel's out-of-memory killer)."""
    if code is None:
        return "still running"
    if code < 0:
        name = signal.Signals(-code).name
        return f"{name}, perhaps out of memory" if code == -signal.SIGKILL else name
    return f"exit code {code}"
