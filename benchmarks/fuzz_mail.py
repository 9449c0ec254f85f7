"""Fuzz the auto-responder's per-message steps with hostile emails: time and memory per message.

    .venv/bin/python benchmarks/fuzz_mail.py --count 10000          # the full run (README figures)
    .venv/bin/python benchmarks/fuzz_mail.py --count 300 --seed 1   # what tests/test_fuzz_mail.py runs

Each generated email (benchmarks/hostile_mail.py, one seed per email) goes through process_one():
parse_message -> decide() (the must-not-answer rules, then a matcher fitted on the starter
articles in articles/) -> compose.build_reply() and its bytes when the outcome is a reply. Each
is run twice: once for wall and CPU time, once under tracemalloc for its peak memory. Prints the
count, outcomes, exceptions (with their seeds), p50/p99/max time, max memory and the slowest
seeds; a seed reproduces its email with hostile_mail.generate(seed, questions).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import tracemalloc
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hostile_mail import generate  # noqa: E402
from kb.autoreply import compose  # noqa: E402
from kb.autoreply.decision import REPLY, decide  # noqa: E402
from kb.autoreply.matcher import MatchArticle, Matcher  # noqa: E402
from kb.autoreply.models import MailRecord  # noqa: E402
from kb.autoreply.parsing import ParseError, parse_message  # noqa: E402
from kb.content import article_files, read_article_file  # noqa: E402
from kb.models import Article  # noqa: E402
from kb.rendering import plain_text  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SETTINGS = {"SUPPORT_ADDRESS": "support@kb.example", "BASE_URL": "https://kb.example/",
            "SECRET_KEY": "fuzz", "DEFAULT_LANGUAGE": "en"}
LINKS = ("https://kb.example/mail/feedback/solved", "https://kb.example/mail/feedback/help")
HANG_SECONDS = 60  # a message still running after this is recorded as a hang, and the run goes on


@dataclass
class Context:
    """What process_one needs besides the email: a fitted matcher and the articles it knows."""

    matcher: Matcher
    articles: dict[str, Article]
    settings: dict[str, Any] = field(default_factory=lambda: dict(SETTINGS))

    @property
    def questions(self) -> list[str]:
        """Article titles: the generator writes its customers' questions from them."""
        return [article.title for article in self.articles.values()]


def make_context(folder: Path = REPO / "articles") -> Context:
    """A matcher over the starter articles, as a worker would fit it over the published ones."""
    articles = {}
    files, _refused = article_files(folder)  # the starter articles hold no links to refuse
    for number, path in enumerate(files, start=1):
        draft = read_article_file(path).draft
        articles[str(number)] = Article(id=number, slug=draft.slug, title=draft.title, body_md=draft.body_md,
                                        lang=draft.lang, status="published")
    matcher = Matcher.from_articles(MatchArticle(key, a.title, plain_text(a.body_md), a.lang)
                                    for key, a in articles.items())
    return Context(matcher, articles)


def process_one(raw: bytes, context: Context) -> str:
    """The worker's steps for one email: parse, decide, and build the reply when there is one."""
    try:
        email = parse_message(raw)
    except ParseError:
        return "unparseable"  # the worker hands these to a person with the parser's reason
    decision = decide(email, context.matcher, context.settings)
    if decision.outcome != REPLY:
        return decision.outcome
    record = MailRecord(id=1, message_id=email.message_id, from_addr=email.from_addr, reply_to=email.reply_to,
                        subject=email.subject, text=email.clean_text, lang=email.lang or "",
                        matches=[{"article_id": m.article_id, "score": m.score} for m in decision.matches])
    chosen = [context.articles[m.article_id] for m in decision.matches if m.article_id in context.articles]
    reply = compose.build_reply(record, email, [(a, compose.excerpt(a)) for a in chosen],
                                settings=context.settings, links=LINKS, message_id="<fuzz@kb.example>")
    reply.as_bytes()  # what smtp.send does with it: every header must encode
    return REPLY


@dataclass
class Result:
    """One message's measurements."""

    seed: int
    labels: list[str]
    size: int
    outcome: str = ""
    wall: float = 0.0
    cpu: float = 0.0
    peak: int = 0
    error: str = ""


class Hang(Exception):
    """A message ran past HANG_SECONDS."""


def _alarm(signum, frame):
    raise Hang(f"still running after {HANG_SECONDS} s")


def measure(seed: int, context: Context, memory: bool = True) -> Result:
    """Generate the email for ``seed`` and run process_one on it, timed and then traced."""
    raw, labels = generate(seed, context.questions)
    result = Result(seed, labels, len(raw))
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_SECONDS)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        result.outcome = process_one(raw, context)
        result.wall, result.cpu = time.perf_counter() - wall, time.process_time() - cpu
        if memory:
            tracemalloc.start()
            try:
                process_one(raw, context)
                result.peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
    except Exception as exc:  # the point of the run: record what escaped, with its seed, and go on
        result.error = "".join(traceback.format_exception_only(exc)).strip()[:300]
        result.wall = result.wall or time.perf_counter() - wall
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return result


def run(count: int, seed: int = 1, memory: bool = True, context: Context | None = None) -> list[Result]:
    """Measure ``count`` emails, seeds ``seed`` .. ``seed + count - 1``."""
    context = context or make_context()
    process_one(b"From: warm@up.example\r\nSubject: refund\r\n\r\nrefund", context)  # jieba, stemmers
    return [measure(s, context, memory) for s in range(seed, seed + count)]


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def report(results: list[Result], slowest: int = 10) -> str:
    """The figures: count, outcomes, exceptions, time percentiles, max memory, slowest seeds."""
    outcomes: dict[str, int] = {}
    for r in results:
        outcomes[r.outcome or "exception"] = outcomes.get(r.outcome or "exception", 0) + 1
    walls, cpus = [r.wall for r in results], [r.cpu for r in results]
    errors = [r for r in results if r.error]
    top = max(results, key=lambda r: r.peak)
    lines = [f"messages: {len(results)}  outcomes: {dict(sorted(outcomes.items()))}",
             f"exceptions: {len(errors)}",
             *[f"  seed {r.seed} ({'+'.join(r.labels)}): {r.error}" for r in errors[:20]],
             f"wall time: p50 {percentile(walls, 50) * 1000:.1f} ms  p99 {percentile(walls, 99) * 1000:.0f} ms"
             f"  max {max(walls):.2f} s",
             f"CPU time:  p50 {percentile(cpus, 50) * 1000:.1f} ms  p99 {percentile(cpus, 99) * 1000:.0f} ms"
             f"  max {max(cpus):.2f} s",
             f"peak memory (tracemalloc): max {top.peak / 1e6:.1f} MB (seed {top.seed}, {top.size:,} bytes, "
             f"{'+'.join(top.labels)})",
             "slowest seeds:"]
    for r in sorted(results, key=lambda r: -r.wall)[:slowest]:
        lines.append(f"  seed {r.seed}: {r.wall:.2f} s wall, {r.cpu:.2f} s CPU, {r.peak / 1e6:.1f} MB, "
                     f"{r.size:,} bytes, {'+'.join(r.labels)} -> {r.outcome or 'exception'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz and print the figures; exit 1 if an exception escaped."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1, help="the first seed")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass (twice as fast)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = run(args.count, args.seed, memory=not args.no_memory)
    print(report(results))
    print(f"total {time.perf_counter() - started:.0f} s")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
