"""The server the auto-responder's sandbox forks its children from (multiprocessing's forkserver).

Kept apart from kb/autoreply/sandbox.py so that starting the server imports nothing heavy: the
server imports kb's parsing and matching code and loads jieba's dictionary itself
(kb/autoreply/sandbox_preload.py, several seconds on a busy machine), so ``kb autoreply`` starts
it first and does its own start-up meanwhile.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing import forkserver

PRELOAD = ["kb.autoreply.sandbox_preload"]  # imported once by the server; every child starts with it


def context():
    """The forkserver start method's context, with kb's preload set."""
    found = multiprocessing.get_context("forkserver")
    found.set_forkserver_preload(PRELOAD)
    return found


def start_server() -> None:
    """Start the forkserver now, without waiting for it to finish importing (idempotent)."""
    context()
    forkserver.ensure_running()
