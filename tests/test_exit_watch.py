"""tests/exit_watch.py: a pytest process stuck after its session prints its stacks and fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STUCK = '''
import threading, time

def test_leaves_a_thread_that_never_ends():
    def spin_forever():
        while True:
            time.sleep(0.05)
    threading.Thread(target=spin_forever, name="left-behind").start()  # not a daemon: exit waits for it
'''


def run(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_case.py").write_text(body)
    env = {**os.environ, "EXIT_WATCH_SECONDS": "2", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.exit_watch", "-p", "no:cacheprovider",
                           str(tmp_path / "test_case.py")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_process_that_cannot_exit_prints_where_and_fails(tmp_path):
    done = run(tmp_path, STUCK)
    assert "1 passed" in done.stdout
    assert done.returncode == 1, done.stderr
    assert "spin_forever" in done.stderr and "test_case.py" in done.stderr  # the stuck thread's stack


def test_a_process_that_exits_is_left_alone(tmp_path):
    done = run(tmp_path, "def test_fine():\n    assert True\n")
    assert done.returncode == 0 and "1 passed" in done.stdout
    assert "Thread" not in done.stderr
