"""Running calls at the same instant, each in its own thread and database session."""

from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

from kb.db import session_scope


def together(calls: Sequence[Callable[[], Any]], timeout: float = 60) -> list:
    """Run each ``call()`` in its own thread, released together by a barrier; their results (in the
    order they finished). Any exception fails the test."""
    barrier, results, errors = threading.Barrier(len(calls)), [], []

    def run(call):
        try:
            barrier.wait(10)
            results.append(call())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not errors, errors
    return results


def at_once(app, calls: Sequence[Callable[[Any], Any]], timeout: float = 60) -> list:
    """Run each ``call(session)`` in its own thread and session, released together by a barrier,
    and commit each; their results (in the order they finished). Any exception fails the test."""
    def in_session(call):
        with session_scope(app) as session:
            result = call(session)
            session.commit()
            return result

    return together([lambda call=call: in_session(call) for call in calls], timeout)
