"""The sandbox's child process: serves one email at a time under a memory and a CPU cap.

Started by kb/autoreply/sandbox.py from the forkserver (which preloads this module); it talks to
the worker over one pipe: ("settings", dict), ("matcher", pickled Matcher), ("job", raw, options)
in; ("ready",), ("sent?", message_id) and (kind, detail, seconds, CPU seconds, peak bytes) out.
"""

from __future__ import annotations

import math
import os
import pickle
import resource
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from kb.autoreply.decision import Decision, message_from_parts
from kb.autoreply.matcher import Matcher
from kb.autoreply.processing import process_message

WARM_UP = message_from_parts("Warm-up", "Loads what parsing and matching import lazily.")


@dataclass(frozen=True)
class Limits:
    """How long one email's processing may take (wall clock) and how much memory it may add."""

    seconds: float
    memory_bytes: int


def serve(conn, function: Callable[..., Decision], limits: Limits) -> None:
    """Serve jobs until told to quit or the worker goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the worker decides
    _die_with_the_worker()
    matcher, settings = Matcher(), {}
    process_message(WARM_UP, matcher=matcher, settings={})  # lazy imports and caches, before any limit
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "job":
            conn.send(_job(conn, function, message[1], matcher, settings, message[2], limits))
        elif message[0] == "matcher":
            matcher = pickle.loads(message[1])
        elif message[0] == "settings":
            settings = message[1]
        else:
            return


def _job(conn, function, raw: bytes, matcher: Matcher, settings: dict, options: dict, limits: Limits) -> tuple:
    """Run one email under the caps; (kind, detail, seconds, CPU seconds, peak bytes) for the worker."""
    before = reset_peak()
    started, cpu = time.perf_counter(), time.process_time()
    try:
        with _memory_cap(limits.memory_bytes), _cpu_cap(limits.seconds):
            result: tuple = ("done", function(raw, matcher=matcher, settings=settings,
                                              sent_message_ids=_AskWorker(conn), **options))
    except MemoryError:
        result = ("too-big", None)
    except Exception as exc:  # a bug on one email: reported, the worker hands the email to a person
        result = ("error", f"{type(exc).__name__}: {exc}"[:500])
    return result + (time.perf_counter() - started, time.process_time() - cpu, max(peak_rss() - before, 0))


class _AskWorker:
    """``message_id in sent``, answered by the worker from its database (cached per email)."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.known: dict[str, bool] = {}

    def __contains__(self, message_id: object) -> bool:
        if not isinstance(message_id, str) or not message_id:
            return False
        if message_id not in self.known:
            self.conn.send(("sent?", message_id))
            self.known[message_id] = bool(self.conn.recv())
        return self.known[message_id]


@contextmanager
def _memory_cap(extra_bytes: int) -> Iterator[None]:
    """Let the address space grow by at most ``extra_bytes`` inside the block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    size = _status_kb("VmSize") * 1024
    if not size:  # no /proc: no baseline to add to, so no cap (the time limit still holds)
        yield
        return
    limit = size + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@contextmanager
def _cpu_cap(seconds: float) -> Iterator[None]:
    """Let the kernel end this process (SIGXCPU) if it burns twice the time limit in CPU: the worker
    kills it long before, unless the worker itself is gone and nobody else would."""
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    limit = math.ceil(usage.ru_utime + usage.ru_stime + 2 * seconds + 1)
    resource.setrlimit(resource.RLIMIT_CPU, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def reset_peak() -> int:
    """Reset the peak resident size to the current one (Linux clear_refs); the current size in bytes."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass
    return _status_kb("VmRSS") * 1024


def peak_rss() -> int:
    """The peak resident size since the last reset, in bytes."""
    return _status_kb("VmHWM") * 1024


def _status_kb(field: str) -> int:
    """A size from /proc/self/status in kB (0 where there is no /proc)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _die_with_the_worker() -> None:
    """End this child when the worker ends, even if it is stuck in C code and never reads its pipe.

    Linux kills the child when its parent, the forkserver, exits (PR_SET_PDEATHSIG). The forkserver
    exits when no process holds its "alive" pipe any more; every forkserver child inherits one end
    of it, so this child closes its copy and the forkserver's life depends on the worker alone.
    """
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the CPU cap (_cpu_cap) still ends a stuck child
        pass
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    alive = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(alive, int):
        try:
            os.close(alive)
        except OSError:
            pass
        server._forkserver_alive_fd = None
