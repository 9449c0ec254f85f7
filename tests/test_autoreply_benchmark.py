"""benchmarks/autoreply.py on a tiny size, so its measures and arguments cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "autoreply.py"


def test_the_matcher_benchmark_measures_the_update_and_the_whole_refit_on_long_articles():
    out = subprocess.run([sys.executable, str(SCRIPT), "--sizes", "60", "--queries", "5", "--emails", "0",
                          "--join", "3"], check=True, capture_output=True, text=True, timeout=300).stdout
    rows = {line.split(" | ")[0].lstrip("| "): line for line in out.splitlines() if line.startswith("| 60 articles")}
    assert len(rows) == 3, out
    refit = next(line for name, line in rows.items() if name.startswith("60 articles: refit"))
    # update (CPU; whole refit; first fit), then scikit-learn's fit, then the ratio
    assert re.search(r"\| [\d.]+ s \([\d.]+ s; [\d.]+ s; [\d.]+ s\) \| [\d.]+ s \([\d.]+ s\) \|", refit), refit


def test_the_matcher_benchmark_joins_articles_into_long_ones():
    from benchmarks import autoreply

    _, joined = autoreply.corpus(2, join=3)
    raw, _ = autoreply.corpus(3)
    assert joined[0].body == "\n\n".join(article["body"] for article in raw)
