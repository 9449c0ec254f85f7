"""Content-gaps benchmark: how long /agent/gaps takes to group the most emails it groups (2,000).

Run:  .venv/bin/python benchmarks/gaps.py                  (2,000 questions, 5 runs, prints the median)
      .venv/bin/python benchmarks/gaps.py --questions 500 --runs 3

The questions are synthetic and seeded: 60 topics, each a few content words, asked in varied
sentences with filler, typos of word order and personal data (which the page scrubs first). What is
timed is kb.capture.gaps.cluster (TF-IDF, the cosine distances, agglomerative clustering, the top
terms and keys), the work the page does on each request besides reading the rows.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb.capture.gaps import MAX_EMAILS, Question, cluster, question_of  # noqa: E402

NOUNS = ("invoice parcel refund password voucher subscription warranty receipt battery charger screen "
         "account delivery address card payment order return size colour discount newsletter label "
         "courier app login cart coupon gift review bank pickup store").split()
VERBS = "change cancel track find reset use update download return exchange pay activate".split()
FRAMES = ["How do I {verb} my {a} {b}?", "Can I {verb} the {a} {b} after a week?", "I want to {verb} {a} {b}",
          "Hi, where can I {verb} my {b} for the {a}? Thanks, Kari (kari@example.no, +47 912 34 567)",
          "{a} {b}: is it possible to {verb} it online?", "Problem with {a} {b}, I cannot {verb} it. Order 20261234"]


def questions(count: int, seed: int = 9) -> list[Question]:
    """``count`` synthetic gap questions on 60 topics (a verb and two nouns), seeded."""
    rng = random.Random(seed)
    topics = [(rng.choice(VERBS), *rng.sample(NOUNS, 2)) for _ in range(60)]
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    found = []
    for n in range(count):
        verb, a, b = rng.choice(topics)
        text = question_of("", rng.choice(FRAMES).format(verb=verb, a=a, b=b), "kari.nordmann@example.no")
        found.append(Question(n + 1, text, "en", start + timedelta(minutes=n)))
    return found


def main(argv: list[str] | None = None) -> None:
    """Time cluster() over synthetic questions and print the median of the runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=MAX_EMAILS)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    data = questions(args.questions)
    cluster(data[:50])  # warm the stemmer caches as a running server has them
    times, groups = [], 0
    for _ in range(args.runs):
        began = time.perf_counter()
        groups = len(cluster(data))
        times.append(time.perf_counter() - began)
    print(f"{args.questions} questions -> {groups} groups; cluster() median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}, {args.runs} runs)")


if __name__ == "__main__":
    main()
