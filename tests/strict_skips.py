"""Pytest plugin for CI: a skipped test fails the run (loaded by scripts/test with ``-p``).

Locally a missing server skips its tests with a reason; in CI the same skip would hide a
test that never ran, so here it turns into a failure that names every skipped test.
"""

from __future__ import annotations

import pytest

_SKIPPED: list[tuple[str, str]] = []


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The skip message pytest stored in the report."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember every test skipped in setup, call or teardown (xfail is not a skip)."""
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPPED.append((report.nodeid, _reason(report)))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """Remember whole modules skipped at collection (``pytest.importorskip`` and the like)."""
    if report.skipped:
        _SKIPPED.append((report.nodeid, _reason(report)))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if anything was skipped."""
    if _SKIPPED and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int) -> None:
    """List the skipped tests, so the CI log says what to install."""
    if not _SKIPPED:
        return
    terminalreporter.section("strict mode: skipped tests fail the run", sep="=", red=True, bold=True)
    for nodeid, reason in _SKIPPED:
        terminalreporter.line(f"SKIPPED {nodeid}: {reason}", red=True)
