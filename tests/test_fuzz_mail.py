"""A few hundred hostile emails through the worker's per-message steps (benchmarks/fuzz_mail.py).

The full run is `.venv/bin/python benchmarks/fuzz_mail.py --count 10000`; this runs the first 300
seeds. No exception may escape parse -> decide -> build_reply, and no message may take over 2 s
or 200 MB (the issue's bounds). Time is the message's CPU time: on a shared test machine the
wall clock also counts other processes' work.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent.parent / "benchmarks" / "fuzz_mail.py"
COUNT = 300
SECONDS = 2.0
PEAK_BYTES = 200_000_000


def load_fuzz():
    """benchmarks/fuzz_mail.py as a module (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location("fuzz_mail", FUZZ)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_mail"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.fuzz
def test_hostile_emails_never_escape_nor_run_away():
    fuzz = load_fuzz()
    results = fuzz.run(COUNT, seed=1)
    summary = fuzz.report(results)
    assert len(results) == COUNT
    assert [r for r in results if r.error] == [], summary
    assert max(r.cpu for r in results) < SECONDS, summary
    assert max(r.peak for r in results) < PEAK_BYTES, summary
    # The generator reaches every outcome, so every step (the reply built too) was exercised.
    assert {r.outcome for r in results} >= {"reply", "person", "skip", "unparseable"}, summary
