"""Pytest plugin: a test process that does not end after its session says where it is stuck.

Once, in CI, pytest printed its summary (every test passed) and then never exited, busy on one
core, until it was killed: some thread or exit handler left by a test (or kb's own at-exit work)
did not finish, and the run would have ended only at CI's time limit, saying nothing. So when the
session is over a watchdog is armed: if the process is still alive ``EXIT_WATCH_SECONDS`` later,
faulthandler prints every thread's stack and ends the process with status 1 (a failure: a
process that cannot exit is a bug to fix, not to hide).
"""

from __future__ import annotations

import faulthandler
import os
import sys

# A normal exit takes seconds and the suite about 20 minutes; the variable is for this plugin's own test.
EXIT_WATCH_SECONDS = float(os.environ.get("EXIT_WATCH_SECONDS") or 600)


def pytest_unconfigure(config) -> None:
    """Arm the watchdog; it dies with the process when the process ends in time."""
    stream = sys.__stderr__
    if stream is not None and not config.getoption("collectonly", False):
        stream.write(f"exit_watch: the session is over; stacks and exit 1 if this process lives {EXIT_WATCH_SECONDS:.0f} s more\n")
        stream.flush()
        faulthandler.dump_traceback_later(EXIT_WATCH_SECONDS, exit=True, file=stream)
