"""Follow-up benchmark: signal-to-alert latency, with the job runner running.

Run:  .venv/bin/python benchmarks/followup.py                        (50 signals, SQLite, both modes)
      .venv/bin/python benchmarks/followup.py --database postgres    (a throwaway PostgreSQL cluster)
      .venv/bin/python benchmarks/followup.py --database postgresql+psycopg://kb@127.0.0.1:5432/kb_bench

Each signal is a "No" vote from a new customer, recorded with record_signal and committed; the
clock starts at the commit and stops when its alert email reaches the aiosmtpd sink, and (separately)
when its webhook POST reaches an HTTP server in this process. Signals go one after another,
--interval seconds apart, without waiting for their alerts.

Modes:
- same process: the runner thread of the app that records the signal (`kb serve` on the embedded
  defaults), woken by the commit that scheduled the job;
- other process: the signal is recorded by an app without a runner, and a second app on the same
  database runs it (`kb jobs run` on another host), which finds the job at its next poll
  (KB_JOBS_POLL_SECONDS, default 5).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import backends  # noqa: E402
from kb.db import session_scope  # noqa: E402
from kb.followup import signals  # noqa: E402
from kb.jobs.runner import close_app as stop_runner  # noqa: E402
from kb.web import create_app  # noqa: E402
from tests.mailservers import SmtpSink  # noqa: E402
from tests.webhookserver import WebhookServer  # noqa: E402

WORDS = "The article says to click Reset, but there is no such button on my screen."


class TimedSink(SmtpSink):
    """The SMTP sink, noting when each alert arrived, by the customer's address in its Reply-To."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, float] = {}

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        """Stamp the arrival, then keep the message."""
        now = time.monotonic()
        message = message_from_bytes(envelope.original_content or b"", policy=default_policy)
        if message["Reply-To"] is not None:
            self.arrived[message["Reply-To"].addresses[0].addr_spec] = now
        return await super().handle_DATA(server, session, envelope)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def make_app(folder: Path, database: str, sink: SmtpSink, hook: WebhookServer, runner: bool):
    """An app on the shared database that alerts to the sink and the webhook server."""
    return create_app({"SECRET_KEY": "bench-secret-key-long-enough-0123456789abcdef",
                       "INSTANCE_DIR": str(folder), "DATABASE_URL": database, "INDEX_DIR": str(folder / "index"),
                       "INDEXER": False, "BASE_URL": "https://help.kb.example", "JOBS_RUNNER": runner,
                       "TEAM_ADDRESS": "team@kb.example", "ALERT_WEBHOOK_URL": hook.url, **sink.settings()})


def measure(database: str, mode: str, count: int, interval: float) -> dict[str, list[float]]:
    """Record ``count`` signals; the latencies (s) of their emails and POSTs."""
    sink, hook = TimedSink(), WebhookServer()
    sink.start()
    folder = Path(tempfile.mkdtemp(prefix="kb-bench-followup-"))
    database = database.replace("{folder}", str(folder))
    apps = [make_app(folder, database, sink, hook, runner=(mode == "same"))]
    if mode == "other":
        apps.append(make_app(folder, database, sink, hook, runner=True))
    committed: dict[str, float] = {}
    run = f"{time.time():.0f}"
    try:
        for i in range(count):
            address = f"customer{i}-{run}@example.com"
            with session_scope(apps[0]) as session:
                signals.record_signal(session, key=f"bench:{run}:{i}", source="vote", settings=apps[0].config,
                                      address=address, name=f"Customer {i}", words=WORDS, reason="out_of_date")
            committed[address] = time.monotonic()
            time.sleep(interval)
        sink.wait_for(count, timeout=120)
        posts = hook.wait_for(count, timeout=120)
    finally:
        for app in apps:
            stop_runner(app)
        sink.stop()
        hook.stop()
        shutil.rmtree(folder, ignore_errors=True)
    email = [sink.arrived[a] - t for a, t in committed.items()]
    webhook = [p["at"] - committed[p["json"]["customer"]["address"]] for p in posts]
    return {"email": email, "webhook": webhook}


def main() -> None:
    """Parse arguments, run the measures and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between two signals")
    parser.add_argument("--database", default="sqlite", help="sqlite, postgres (a throwaway cluster) or a URL")
    parser.add_argument("--modes", default="same,other", help="same, other or both (comma-separated)")
    args = parser.parse_args()
    cluster = backends.start_cluster() if args.database == "postgres" else None
    database = {"sqlite": "sqlite:///{folder}/kb.sqlite3"}.get(args.database, cluster.url if cluster else args.database)
    name = "PostgreSQL" if database.startswith("postgresql") else "SQLite"
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"| runner | database | alert | median | p95 | max |\n|---|---|---|---|---|---|")
    try:
        for mode in args.modes.split(","):
            found = measure(database, mode, args.signals, args.interval)
            for what, values in found.items():
                print(f"| {'same process' if mode == 'same' else 'other process (5 s poll)'} | {name} | "
                      f"{what} ({len(values)}) | {statistics.median(values) * 1000:.0f} ms | "
                      f"{percentile(values, 95) * 1000:.0f} ms | {max(values) * 1000:.0f} ms |", flush=True)
    finally:
        if cluster is not None:
            backends.stop(cluster)


if __name__ == "__main__":
    main()
