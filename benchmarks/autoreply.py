"""Auto-responder benchmark: matcher refit time and throughput, and APPEND -> reply latency.

Run:  .venv/bin/python benchmarks/autoreply.py                 (1,000 and 10,000 articles, 20 emails)
      .venv/bin/python benchmarks/autoreply.py --sizes 10000 --emails 0   (the matcher only)

Matcher: articles are real English prose (docstrings of the installed Python code, see
corpus.py; ``--join K`` makes each K of them long, as reindex.py does). "Refit" is what a running
worker does when one article changed: Matcher.updated, which re-reads that article's words and
fits the character channels again; "whole" is Matcher.from_articles over all of them (the first
fit in a process, in brackets too, also stems every word once). "Throughput" runs the worker's whole decision pipeline (decide(): parse the RFC
5322 message, clean it, must-not-answer rules, match, confidence rule) on emails written from
sentences of random articles, one at a time in one thread. Memory is the process's resident set
after the fit (and its peak), and the size of the pickled model (what the sandbox child gets).
In the same run, each in its own process, plain scikit-learn on the same corpus and emails:
TfidfVectorizer fit, then per email transform, sparse product and top 3 with argpartition
(no parsing, rules or explanations), with kb's figure over scikit-learn's as the ratio.

Latency: pymap (IMAP, in process) and aiosmtpd, the worker in run_forever, idle in IDLE with a
30 s wake-up; each email is APPENDed by another client and the clock stops when its reply reaches
the SMTP sink. Emails go one after the other, each from a new sender, on the starter articles.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import pickle
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpus import joined_articles  # noqa: E402
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


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (or its peak, "VmHWM") in MB, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def corpus(n: int, join: int = 1) -> tuple[list[dict], list[MatchArticle]]:
    """The raw articles (each ``join`` of the corpus's long) and their matcher input."""
    raw = joined_articles(n, join)
    return raw, [MatchArticle(str(i), a["title"], a["body"], "en") for i, a in enumerate(raw)]


def measure_kb(n: int, queries: int, join: int = 1) -> dict:
    """kb's matcher: first fit, a refit after one article changed (updated, and whole), decide() throughput, memory."""
    raw, articles = corpus(n, join)
    settings = load_config({"INSTANCE_DIR": tempfile.gettempdir()}, environ={})
    emails = sample_emails(raw, queries)
    decide(emails[0], Matcher.from_articles(articles[:50]), settings)  # imports, jieba, stemmers
    started = time.perf_counter()
    matcher = Matcher.from_articles(articles)
    first = time.perf_counter() - started
    rss = rss_mb()
    changed = articles[:-1] + [MatchArticle(articles[-1].id, articles[-1].title, articles[-1].body + " Edited.", "en")]
    started = time.perf_counter()
    whole = Matcher.from_articles(changed)
    whole_refit = time.perf_counter() - started
    del whole
    started, cpu = time.perf_counter(), time.process_time()
    matcher = matcher.updated(changed)
    refit, refit_cpu = time.perf_counter() - started, time.process_time() - cpu
    decide(emails[0], matcher, settings)
    started, cpu = time.perf_counter(), time.process_time()
    replies = sum(decide(raw_email, matcher, settings).reply for raw_email in emails)
    elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"first": first, "whole": whole_refit, "refit": refit, "refit_cpu": refit_cpu, "rate": queries / elapsed,
            "rate_cpu": queries / elapsed_cpu, "replies": replies, "rss": rss,
            "peak": rss_mb("VmHWM"), "model": len(pickle.dumps(matcher)) / 2**20}


def measure_sklearn(n: int, queries: int, join: int = 1) -> dict:
    """Plain scikit-learn on the same corpus: TfidfVectorizer fit, then per email transform,
    sparse product and top 3 by argpartition (no parsing, no rules)."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    raw, _ = corpus(n, join)
    texts = [email_text(raw_email) for raw_email in sample_emails(raw, queries)]
    started, cpu = time.perf_counter(), time.process_time()
    vectorizer = TfidfVectorizer(sublinear_tf=True, dtype=np.float32)
    matrix = vectorizer.fit_transform([f"{a['title']}\n{a['body']}" for a in raw]).T.tocsr()
    fit, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
    rss = rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    for text in texts:
        scores = (vectorizer.transform([text]) @ matrix).toarray().ravel()
        top = np.argpartition(-scores, 3)[:3]
        top[np.argsort(-scores[top])]
    elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"first": fit, "refit": fit, "refit_cpu": fit_cpu, "rate": queries / elapsed,
            "rate_cpu": queries / elapsed_cpu, "rss": rss, "peak": rss_mb("VmHWM"),
            "model": len(pickle.dumps((vectorizer, matrix))) / 2**20}


def email_text(raw_email: bytes) -> str:
    """An email's subject and body as one text (the stdlib parser), for the plain baseline."""
    message = email.message_from_bytes(raw_email, policy=email.policy.default)
    return f"{message['subject']}\n{message.get_content()}"


def measured(part: str, n: int, queries: int, join: int = 1) -> dict:
    """One measure in its own process, so each memory figure is its own."""
    out = subprocess.run([sys.executable, __file__, "--part", part, "--sizes", str(n), "--queries", str(queries),
                          "--join", str(join)], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def matcher_rows(n: int, queries: int, join: int = 1) -> list[tuple[str, str, str, str]]:
    """kb's matcher and plain scikit-learn at ``n`` articles, each in a fresh process, with ratios."""
    kb, plain = measured("kb", n, queries, join), measured("sklearn", n, queries, join)
    return [
        (f"{n:,} articles: refit after one article changed, wall (CPU; whole refit; first fit in a process)",
         f"{kb['refit']:.2f} s ({kb['refit_cpu']:.2f} s; {kb['whole']:.2f} s; {kb['first']:.2f} s)",
         f"{plain['refit']:.2f} s ({plain['refit_cpu']:.2f} s)",
         f"{kb['refit'] / plain['refit']:.1f}x ({kb['refit_cpu'] / plain['refit_cpu']:.1f}x)"),
        (f"{n:,} articles: decide() throughput, {queries} emails ({kb['replies']} replies), wall (CPU)",
         f"{kb['rate']:.0f} emails/s ({kb['rate_cpu']:.0f})",
         f"{plain['rate']:.0f} emails/s ({plain['rate_cpu']:.0f})",
         f"{plain['rate'] / kb['rate']:.1f}x slower ({plain['rate_cpu'] / kb['rate_cpu']:.1f}x)"),
        (f"{n:,} articles: memory after fit, RSS (peak; model pickled)",
         f"{kb['rss']:.0f} MB ({kb['peak']:.0f}; {kb['model']:.0f} MB)",
         f"{plain['rss']:.0f} MB ({plain['peak']:.0f}; {plain['model']:.0f} MB)", f"{kb['rss'] / plain['rss']:.1f}x"),
    ]


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
             f"{statistics.median(ms):.0f} / {percentile(ms, 95):.0f} ms", "", "")]


def main() -> None:
    """Parse arguments, run the measures and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--queries", type=int, default=200, help="emails for the throughput measure")
    parser.add_argument("--emails", type=int, default=20, help="emails for the latency measure")
    parser.add_argument("--join", type=int, default=1, help="each article this many of the corpus's long")
    parser.add_argument("--part", choices=("kb", "sklearn"), help=argparse.SUPPRESS)  # one measure, as JSON
    args = parser.parse_args()
    if args.part:
        measure = measure_kb if args.part == "kb" else measure_sklearn
        print(json.dumps(measure(args.sizes[0], args.queries, args.join)))
        return
    rows = []
    for n in args.sizes:
        print(f"... matcher at {n:,} articles", file=sys.stderr, flush=True)
        rows += matcher_rows(n, args.queries, args.join)
    if args.emails:
        print(f"... latency over {args.emails} emails", file=sys.stderr, flush=True)
        rows += latency_rows(args.emails)
    print("| measure | kb | plain scikit-learn, same run | ratio |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
