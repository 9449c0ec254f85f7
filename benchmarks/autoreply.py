"""Auto-responder benchmark: matcher refit time and throughput, and APPEND -> reply latency.

Run:  .venv/bin/python benchmarks/autoreply.py                 (1,000 and 10,000 articles, 20 emails)
      .venv/bin/python benchmarks/autoreply.py --sizes 1000 --emails 20 --queries 200

Matcher: articles are real English prose (docstrings of the installed Python code, see
corpus.py). "Refit" is Matcher.from_articles over all of them, what a running worker does when
articles change. "Throughput" runs the worker's whole decision pipeline (decide(): parse the RFC
5322 message, clean it, must-not-answer rules, match, confidence rule) on emails written from
sentences of random articles, one at a time in one thread.

Latency: pymap (IMAP, in process) and aiosmtpd, the worker in run_forever, idle in IDLE with a
30 s wake-up; each email is APPENDed by another client and the clock stops when its reply reaches
the SMTP sink. Emails go one after the other, each from a new sender, on the starter articles.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpus import build_articles  # noqa: E402
from kb.autoreply.decision import decide, message_from_parts  # noqa: E402
from kb.autoreply.matcher import MatchArticle, Matcher  # noqa: E402
from kb.config import load_config  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def sample_emails(articles: list[dict], n: int, seed: int = 7) -> list[bytes]:
    """``n`` raw emails: a subject from a title's words and a body of one article sentence or two."""
    rng = random.Random(seed)
    emails = []
    for _ in range(n):
        article = rng.choice(articles)
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", article["body"]) if len(s.split()) > 4] or [article["body"]]
        start = rng.randrange(len(sentences))
        body = "Hello,\n\n" + " ".join(sentences[start:start + 2]) + "\n\nThanks, Pat"
        subject = " ".join(article["title"].split()[:6])
        emails.append(message_from_parts(subject, body, sender=f"pat{rng.randrange(10**6)}@customer.example"))
    return emails


def matcher_rows(n: int, queries: int) -> list[tuple[str, str]]:
    """Refit time and pipeline throughput at ``n`` articles."""
    raw = build_articles(n)
    articles = [MatchArticle(str(i), a["title"], a["body"], "en") for i, a in enumerate(raw)]
    started = time.perf_counter()
    matcher = Matcher.from_articles(articles)
    refit = time.perf_counter() - started
    settings = load_config({"INSTANCE_DIR": tempfile.gettempdir()}, environ={})
    emails = sample_emails(raw, queries)
    decide(emails[0], matcher, settings)  # warm-up (jieba, stemmers)
    started = time.perf_counter()
    replies = sum(decide(raw_email, matcher, settings).reply for raw_email in emails)
    elapsed = time.perf_counter() - started
    return [(f"{n:,} articles: refit (Matcher.from_articles)", f"{refit:.2f} s"),
            (f"{n:,} articles: decide() throughput, {queries} emails", f"{queries / elapsed:.0f} emails/s "
             f"({elapsed / queries * 1000:.1f} ms each; {replies} would get a reply)")]


def latency_rows(count: int) -> list[tuple[str, str]]:
    """Median and p95 of APPEND -> reply at the SMTP sink, worker in IDLE."""
    from kb.autoreply.worker import Worker
    from kb.cli import close_app, run_import
    from kb.web import create_app
    from tests.mailservers import PymapServer, SmtpSink

    imap, sink = PymapServer(), SmtpSink()
    imap.start()
    sink.start()
    folder = Path(tempfile.mkdtemp(prefix="kb-bench-autoreply-"))
    app = create_app({"SECRET_KEY": "bench-secret-key-long-enough-0123456789abcdef",
                      "INSTANCE_DIR": str(folder), "DATABASE_URL": f"sqlite:///{folder / 'kb.sqlite3'}",
                      "INDEX_DIR": str(folder / "index"), "INDEXER": False, "BASE_URL": "https://help.kb.example",
                      **imap.settings(), **sink.settings()})
    worker = None
    try:
        run_import(app, REPO / "articles")
        worker = Worker(app, wake_seconds=30)
        thread = threading.Thread(target=worker.run_forever, daemon=True)
        thread.start()
        latencies = []
        for i in range(count):
            deadline = time.monotonic() + 10
            while not worker.waiting and time.monotonic() < deadline:
                time.sleep(0.01)  # measure from IDLE, as in production between emails
            raw = message_from_parts("How do I reset my password?",
                                     "I forgot my password and cannot sign in. How can I reset it?",
                                     sender=f"pat{i}@customer.example")
            started = time.perf_counter()
            imap.append(raw)
            sink.wait_for(i + 1, timeout=30)
            latencies.append(time.perf_counter() - started)
    finally:
        if worker is not None:
            worker.interrupt()
            thread.join(10)
        close_app(app)
        sink.stop()
        imap.stop()
    ms = [x * 1000 for x in latencies]
    return [(f"APPEND -> reply at the SMTP sink, {count} emails, worker in IDLE: median / p95",
             f"{statistics.median(ms):.0f} / {percentile(ms, 95):.0f} ms")]


def main() -> None:
    """Parse arguments, run the measures and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--queries", type=int, default=200, help="emails for the throughput measure")
    parser.add_argument("--emails", type=int, default=20, help="emails for the latency measure")
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        print(f"... matcher at {n:,} articles", file=sys.stderr, flush=True)
        rows += matcher_rows(n, args.queries)
    if args.emails:
        print(f"... latency over {args.emails} emails", file=sys.stderr, flush=True)
        rows += latency_rows(args.emails)
    print("| measure | result |\n|---|---|")
    for label, figure in rows:
        print(f"| {label} | {figure} |")


if __name__ == "__main__":
    main()
