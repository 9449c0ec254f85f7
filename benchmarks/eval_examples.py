"""Matching with example questions: eval_match.py's --examples (see its docstring for the commands).

Past answered questions are what a labelled query set is: each query, with its "answer_ids", is an
example question of those articles, as if an agent had answered it. Two ways to measure:

- examples from another split (``stackfaq test --examples dev``): the dev queries are the
  examples, the test queries are scored;
- halves (``stackfaq dev --examples dev``, ``aiabde-pt --examples halves``): the queries are split
  in two by a fixed seed; the examples come from one half and the other half is scored, then the
  reverse. This is how the channel's weights were tuned on dev without scoring a query against
  itself.

Each line is printed beside the same queries scored without examples.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

SEED = "kb-issue-9"  # fixed: the same halves on every run


def half_of(query_id: str) -> int:
    """0 or 1: the half a query belongs to, from a hash of the seed and its id."""
    return hashlib.sha256(f"{SEED}:{query_id}".encode()).digest()[0] % 2


def split_halves(queries: Path, folder: Path) -> list[Path]:
    """The query file's lines written to two files by half_of; their paths."""
    paths = [folder / "half-a.jsonl", folder / "half-b.jsonl"]
    handles = [open(path, "w", encoding="utf-8") for path in paths]
    try:
        for line in queries.read_text(encoding="utf-8").splitlines(keepends=True):
            if line.strip():
                handles[half_of(str(json.loads(line)["id"]))].write(line)
    finally:
        for handle in handles:
            handle.close()
    return paths


def examples_source(name: str, dataset_folder: Path, queries: Path) -> Path | None:
    """The examples file for --examples NAME: a split of the dataset, "halves" (None), or a path."""
    if name == "halves":
        return None
    candidate = dataset_folder / f"queries-{name}.jsonl"
    path = candidate if candidate.exists() else Path(name)
    if not path.exists():
        raise SystemExit(f"--examples {name}: neither {candidate} nor a file of that name exists")
    return None if path.resolve() == queries.resolve() else path


def report(articles: Path, queries: Path, examples: Path | None, settings: dict, run, score, labels,
           share: float) -> list[dict]:
    """Print the figures with and without examples; the outputs with examples (all scored queries)."""
    if examples is not None:
        return _compare(f"{queries.name}, examples from {examples.name}", articles, queries, examples,
                        settings, run, score, labels, share)
    with tempfile.TemporaryDirectory() as folder:
        half_a, half_b = split_halves(queries, Path(folder))
        outputs = []
        for scored, given in ((half_a, half_b), (half_b, half_a)):
            outputs += _compare(f"{scored.stem} scored, examples from {given.stem}", articles, scored, given,
                                settings, run, score, labels, share)
    print(f"both halves ({len(outputs)} queries), with examples:")
    print("  " + _line(score(outputs, labels, share=share)))
    return outputs


def _compare(title: str, articles: Path, queries: Path, examples: Path, settings: dict, run, score, labels,
             share: float) -> list[dict]:
    """One scored set without and with examples, printed; its outputs with examples."""
    before, _ = run(articles, queries, settings)
    after, seconds = run(articles, queries, settings, examples)
    count = sum(1 for line in examples.read_text(encoding="utf-8").splitlines() if line.strip())
    print(f"{title} ({len(after)} queries, {count} examples, {seconds:.1f} s):")
    print("  without examples: " + _line(score(before, labels, share=share)))
    print("  with examples:    " + _line(score(after, labels, share=share)))
    driven = sum(1 for out in after if out["results"] and "example" in out["results"][0])
    print(f"  best match driven by an example: {driven / max(1, len(after)):.3f}")
    return after


def _line(figures: dict) -> str:
    """The figures the README reports, on one line."""
    return (f"MRR {figures['MRR']:.3f}  P@1 {figures['P@1']:.3f}  R@3 {figures['R@3']:.3f}  "
            f"reply rate {figures['coverage']:.3f}  reply precision {figures['precision']:.3f}  "
            f"shown {figures['shown']:.2f}")
