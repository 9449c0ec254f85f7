"""Emails that make their processing misbehave on purpose, for the auto-responder's backstop tests.

The parser's own bounds are meant to make every real email fast, so a test that needs an email
which stays slow (or huge) whatever the parser does cannot rely on a real slow input. An email
carrying ``X-Kb-Test: slow=SECONDS``, ``huge=MB`` or ``crash`` makes the processing of that email
spend SECONDS in C code (a regular expression that backtracks: no Python-level deadline can stop
it), allocate MB megabytes, or die of SIGSEGV; any other email is processed as usual.

- In the test process: ``Worker(app, process=tests.misbehaving.process_message)``.
- In a real ``kb`` process: put ``tests/misbehaving_site`` and the repository on PYTHONPATH; its
  sitecustomize calls ``install()``, which makes the email parser itself misbehave.
"""

from __future__ import annotations

import math
import os
import re
import signal
import time

MARKER = re.compile(rb"^X-Kb-Test: *(slow|huge|crash)(?:=(\d+(?:\.\d+)?))?", re.IGNORECASE | re.MULTILINE)
_BACKTRACKING = re.compile(r"(a+)+$")


def header(kind: str, amount: float | None = None) -> str:
    """The header value that asks for ``kind`` (slow=SECONDS, huge=MB, crash)."""
    return kind if amount is None else f"{kind}={amount:g}"


def misbehave(data: bytes | str) -> None:
    """Do what the email's X-Kb-Test header asks for (nothing without one)."""
    head = data[:4096].encode("latin-1", "replace") if isinstance(data, str) else bytes(data[:4096])
    found = MARKER.search(head)
    if not found:
        return
    kind, amount = found.group(1).decode().lower(), float(found.group(2) or 0)
    if kind == "slow":
        busy_in_c(amount or 60)
    elif kind == "huge":
        held = [bytearray(1 << 20) for _ in range(int(amount or 400))]  # touched pages, not just reserved
        del held
    else:
        os.kill(os.getpid(), signal.SIGSEGV)


def busy_in_c(seconds: float) -> None:
    """Spend about ``seconds`` (within a factor of two) inside one call to the regex engine."""
    started = time.perf_counter()
    _BACKTRACKING.match("a" * 16 + "b")
    unit = max(time.perf_counter() - started, 1e-4)  # each extra "a" doubles the work
    extra = max(0, math.ceil(math.log2(seconds / unit)))
    _BACKTRACKING.match("a" * (16 + extra) + "b")


def process_message(raw: bytes, **options):
    """kb's process_message, after misbehaving as the email asks."""
    from kb.autoreply import processing  # not at import: sitecustomize imports this module early

    misbehave(raw)
    return processing.process_message(raw, **options)


def install() -> None:
    """Make the stdlib email parser misbehave as each email asks (every parse goes through feed)."""
    from email.feedparser import FeedParser

    original = FeedParser.feed

    def feed(self, data):
        misbehave(data)
        return original(self, data)

    FeedParser.feed = feed


def which_process(raw: bytes, **options):
    """A decision whose reason names the process that made it (to see the sandbox reuse or replace it)."""
    from kb.autoreply.decision import PERSON, Decision

    misbehave(raw)
    return Decision(PERSON, f"pid {os.getpid()}")


def jieba_state(raw: bytes, **options):
    """A decision whose reason says whether jieba's dictionary was loaded before this email came."""
    from kb.autoreply import textproc
    from kb.autoreply.decision import PERSON, Decision

    return Decision(PERSON, "jieba loaded" if textproc._jieba_module is not None else "jieba not loaded")
