"""Fuzz the auto-responder with hostile emails, each through the worker's own per-email handling.

    .venv/bin/python benchmarks/fuzz_mail.py --count 10000                    # the full run (README)
    .venv/bin/python benchmarks/fuzz_mail.py --count 1000 --database postgresql+psycopg://kb@127.0.0.1:PORT/DB
    .venv/bin/python benchmarks/fuzz_mail.py --seed 4711 --count 1            # one seed again

Each generated email (benchmarks/hostile_mail.py, one seed per email) goes through
``Worker.handle_email(raw, uid=seed)`` of a live worker (kb/autoreply/intake.py), as if fetched
from the mailbox: the claim in the ledger (every text sanitised for the database), parsing,
cleaning and deciding in the sandbox's child process within its time and memory limits, the
decision recorded, and for a reply its composition and its sending by SMTP. The app is real
(create_app on a temporary SQLite database, or ``--database``, which must be empty), with the
starter articles of articles/ imported and published as ``kb serve`` does; replies go to an
aiosmtpd sink in this process that announces SMTPUTF8. No mailbox: nothing is marked.

The per-sender cap is set to 1,000 (the most the setting allows): the generator writes from a
handful of addresses, and the production cap of 1 would hide almost every reply behind it. The
run counts any email the cap still stopped.

Per email it records: the wall time and the worker process's CPU time of the whole handle_email;
the child's wall time, CPU time and peak resident growth (from the worker's ``last_outcome``); the
worker process's own peak, as resident growth (or, with --tracemalloc, as its peak of Python
allocations, which about doubles the worker's CPU time); the email's final state and reason in
the ledger. The child's wall-clock limit is raised (``--message-seconds``, 30 s by default) so
that a loaded machine does not turn a slow moment into a "too-slow" email; the memory limit stays
the production one. The figures are printed by benchmarks/fuzz_report.py. A seed reproduces its
email with hostile_mail.generate(seed, questions), questions being the article titles by id.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
import tracemalloc
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from fuzz_report import PEAK_BYTES, SECONDS, report  # noqa: E402,F401 (the bounds: for the test)
from hostile_mail import generate  # noqa: E402
from kb import content  # noqa: E402
from kb.autoreply import ledger  # noqa: E402
from kb.autoreply.models import MailRecord  # noqa: E402
from kb.autoreply.processing import peek  # noqa: E402
from kb.autoreply.sandbox_child import peak_rss, reset_peak  # noqa: E402
from kb.autoreply.storable import storable_key  # noqa: E402
from kb.autoreply.worker import Worker  # noqa: E402
from kb.cli import close_app  # noqa: E402
from kb.db import session_scope  # noqa: E402
from kb.models import Article  # noqa: E402
from kb.web import create_app  # noqa: E402
from tests.mailservers.smtp import SmtpSink  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
UIDVALIDITY = 1
FINAL = ("replied", "person", "skipped")
SENDER_CAP = 1000
HANG_SECONDS = 120  # a handle_email still running after this is recorded as a hang, and the run goes on


@dataclass
class Result:
    """One email's measurements and what became of it."""

    seed: int
    labels: list[str]
    size: int
    answer: str = ""  # what handle_email returned ("already": the same email as an earlier seed's)
    state: str = ""  # the email's state in the ledger afterwards
    reason: str = ""
    wall: float = 0.0  # the whole handle_email
    worker_cpu: float = 0.0  # the worker process's CPU time during it (the SMTP sink's thread included)
    child_wall: float = 0.0
    child_cpu: float = 0.0
    child_peak: int = 0
    worker_peak: int = 0
    error: str = ""

    @property
    def cpu(self) -> float:
        """The email's CPU time in both processes: the work it cost, whatever else the machine ran."""
        return self.child_cpu + self.worker_cpu

    @property
    def code(self) -> str:
        """The reason's code ("confident", "unparseable", "too-slow"...)."""
        return self.reason.split(":", 1)[0].strip() or "-"


@dataclass
class Harness:
    """A live worker on a real app and an SMTP sink; ``questions`` seed the generator."""

    app: object
    worker: Worker
    sink: SmtpSink
    questions: list[str] = field(default_factory=list)


@contextmanager
def harness(database: str | None = None, message_seconds: float = 30.0) -> Iterator[Harness]:
    """Start the sink, build the app (``database``, else SQLite in a temporary folder) with the
    starter articles, and a live worker sending to the sink; all stopped and removed after."""
    folder = Path(tempfile.mkdtemp(prefix="kb-fuzz-"))
    sink = SmtpSink(smtputf8=True)
    sink.start()
    app = None
    try:
        app = create_app({"SECRET_KEY": "fuzz-secret-key-long-enough-0123456789abcdef",
                          "INSTANCE_DIR": str(folder), "INDEX_DIR": str(folder / "index"), "INDEXER": False,
                          "DATABASE_URL": database or f"sqlite:///{folder / 'kb.sqlite3'}",
                          "STARTER_ARTICLES_DIR": str(REPO / "articles"), "BASE_URL": "https://kb.example/",
                          "AUTOREPLY_SENDER_CAP": SENDER_CAP, "AUTOREPLY_MESSAGE_SECONDS": message_seconds,
                          **sink.settings()})
        questions = _starter_articles(app)
        worker = Worker(app)
        try:
            with session_scope(app) as session:  # what a cycle does before its first email
                worker.refresh_model(session)
            worker.sandbox.wait_ready()  # what the worker does before it first waits for mail
            yield Harness(app, worker, sink, questions)
        finally:
            worker.close()
    finally:
        if app is not None:
            close_app(app)
        sink.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _starter_articles(app) -> list[str]:
    """Import and publish the starter articles as ``kb serve`` does; their titles. The database
    must be empty: an email already in its ledger would be "already" handled."""
    content.bootstrap(app)
    with session_scope(app) as session:
        if session.scalar(sa.select(sa.func.count(MailRecord.id))):
            raise SystemExit("The database already holds mail records: give the fuzz run an empty database.")
        titles = list(session.scalars(sa.select(Article.title).where(Article.status == "published")
                                      .order_by(Article.id)))
    if not titles:
        raise SystemExit("No published articles: give the fuzz run an empty database (it imports articles/).")
    return titles


class Hang(Exception):
    """handle_email ran past HANG_SECONDS."""


def _alarm(signum, frame):
    raise Hang(f"still running after {HANG_SECONDS} s")


@contextmanager
def _worker_peak(result: Result, tracing: bool) -> Iterator[None]:
    """Put the worker process's peak during the block in ``result``: its resident size's growth
    (Linux), or with ``tracing`` the peak of its Python allocations (tracemalloc, which about
    doubles the worker's own CPU time)."""
    before = 0 if tracing else reset_peak()
    if tracing:
        tracemalloc.start()
    try:
        yield
    finally:
        if tracing:
            result.worker_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        else:
            result.worker_peak = max(peak_rss() - before, 0)


def measure(seed: int, rig: Harness, tracing: bool = False) -> Result:
    """Generate the email for ``seed``, hand it to the worker, and read back what it recorded."""
    raw, labels = generate(seed, rig.questions)
    result = Result(seed, labels, len(raw))
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_SECONDS)
    started, cpu = time.perf_counter(), time.process_time()
    try:
        with _worker_peak(result, tracing):
            result.answer = rig.worker.handle_email(raw, uid=seed, uidvalidity=UIDVALIDITY)
    except Exception as exc:  # the point of the run: record what escaped, with its seed, and go on
        result.error = "".join(traceback.format_exception_only(exc)).strip()[:300]
    finally:
        result.wall, result.worker_cpu = time.perf_counter() - started, time.process_time() - cpu
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    outcome = rig.worker.last_outcome
    result.child_wall, result.child_cpu, result.child_peak = outcome.seconds, outcome.cpu_seconds, outcome.peak_bytes
    result.state, result.reason = _recorded(rig.app, seed, raw)
    return result


def _recorded(app, seed: int, raw: bytes) -> tuple[str, str]:
    """The ledger's state and reason for the email of ``seed`` (or of the earlier email it repeats)."""
    with session_scope(app) as session:
        record = session.scalar(sa.select(MailRecord).where(MailRecord.uid == seed))
        if record is None:  # "already": the same Message-ID, or the same bytes, as an earlier seed
            key = storable_key(ledger.dedupe_key_for(raw, peek(raw).message_id), ledger.KEY_LENGTH)
            record = session.scalar(sa.select(MailRecord).where(MailRecord.dedupe_key == key))
        return (record.state, record.reason) if record is not None else ("missing", "")


def run(count: int, seed: int = 1, tracing: bool = False, rig: Harness | None = None,
        progress: bool = False) -> list[Result]:
    """Measure ``count`` emails, seeds ``seed`` .. ``seed + count - 1``, on ``rig`` (or a fresh one)."""
    if rig is None:
        with harness() as fresh:
            return run(count, seed, tracing, fresh, progress)
    results = []
    for number in range(seed, seed + count):
        results.append(measure(number, rig, tracing))
        if progress and len(results) % 500 == 0:
            print(f"... {len(results)} emails", file=sys.stderr, flush=True)
    return results


def audit(rig: Harness) -> dict:
    """The ledger and the sink after a run: records per state, emails not finished or without a
    reason, and whether the replies recorded as sent are the ones the SMTP sink received."""
    with session_scope(rig.app) as session:
        states = dict(session.execute(sa.select(MailRecord.state, sa.func.count()).group_by(MailRecord.state)).all())
        unfinished = list(session.scalars(sa.select(MailRecord.uid).where(
            MailRecord.state.not_in(FINAL)).order_by(MailRecord.uid)))
        reasonless = session.scalar(sa.select(sa.func.count()).where(MailRecord.reason == "")) or 0
        replied = set(session.scalars(sa.select(MailRecord.reply_message_id).where(MailRecord.state == "replied")))
    received = [str(BytesHeaderParser().parsebytes(mail.data)["Message-ID"]).strip() for mail in rig.sink.messages]
    return {"records": sum(states.values()), "states": states, "unfinished_seeds": unfinished,
            "without_reason": reasonless, "sink": len(received), "replied": len(replied),
            "replied_not_received": len(replied - set(received)), "received_not_replied": len(set(received) - replied)}


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz and print the figures; exit 1 if an exception escaped or an email was left unfinished."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1, help="the first seed")
    parser.add_argument("--database", metavar="URL", help="an empty database (default: SQLite in a temporary folder)")
    parser.add_argument("--message-seconds", type=float, default=30.0,
                        help="the child's wall-clock limit per email (KB_AUTOREPLY_MESSAGE_SECONDS; production: 2)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="the worker's peak as Python allocations, not resident growth (slows the worker)")
    parser.add_argument("--out", type=Path, help="write one JSON line per email here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with harness(args.database, args.message_seconds) as rig:
        results = run(args.count, args.seed, tracing=args.tracemalloc, rig=rig, progress=True)
        found = audit(rig)
    print(report(results, found))
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.out:
        args.out.write_text("".join(json.dumps(asdict(r)) + "\n" for r in results))
    return 1 if any(r.error for r in results) or found["unfinished_seeds"] else 0


if __name__ == "__main__":
    sys.exit(main())
