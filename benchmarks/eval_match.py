"""Measure the auto-responder's matching with the real `kb match` pipeline over a labelled set.

    .venv/bin/python benchmarks/eval_match.py stackfaq test      # the figures in the README
    .venv/bin/python benchmarks/eval_match.py stackfaq test --synonyms default   # with kb's default synonyms
    .venv/bin/python benchmarks/eval_match.py stackfaq dev --sweep
    .venv/bin/python benchmarks/eval_match.py stackfaq dev --cut-sweep   # the relative cut of suggestions
    .venv/bin/python benchmarks/eval_match.py aiabde-pt
    .venv/bin/python benchmarks/eval_match.py stackfaq test --examples dev   # dev queries as example questions
    .venv/bin/python benchmarks/eval_match.py stackfaq dev --examples dev    # dev in two halves (tuning)
    .venv/bin/python benchmarks/eval_match.py aiabde-pt --examples halves    # each half the other's examples
    .venv/bin/python benchmarks/eval_match.py --results out.jsonl --queries Q.jsonl  # score `kb match` output

Datasets live in ../shared/eval/<name>/ (articles.jsonl, queries[-<split>].jsonl with
"answer_ids"; --eval-dir points elsewhere). Prints P@1, Recall@3, MRR, and at the configured
threshold (KB_AUTOREPLY_THRESHOLD, else the default) the coverage (share of queries kb replies
to), the precision of replies (share of replies whose suggestions, at most 3 and none under
KB_AUTOREPLY_RELATIVE_CUT of the best score, hold a right article) and how many articles a reply
shows on average. Tune on dev only, never on test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb.autoreply.decision import TOP, relative_cut, should_reply, shown_count, thresholds  # noqa: E402
from kb.autoreply.match_command import run_match  # noqa: E402
from kb.autoreply.matcher import Match  # noqa: E402
from kb.config import load_config  # noqa: E402

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
# Rules that run before matching: a query they stop never reaches the threshold.
RULE_FREE = ("confident:", "low-score:", "ambiguous:", "no-match:")


def dataset_paths(name: str, split: str | None, root: Path = EVAL) -> tuple[Path, Path]:
    """(articles, queries) files of a shared evaluation set."""
    folder = root / name
    queries = folder / (f"queries-{split}.jsonl" if split else "queries.jsonl")
    return folder / "articles.jsonl", queries


def run(articles: Path, queries: Path, settings: dict, examples: Path | None = None,
        synonyms: str = "none") -> tuple[list[dict], float]:
    """`kb match` over all articles (so MRR sees every rank); its output lines and seconds taken.

    ``examples``: labelled queries loaded as example questions; ``synonyms`` "default" expands the
    queries with kb's shipped default sets, as a fresh kb does.
    """
    from kb.autoreply import synonym_expansion

    top = sum(1 for line in open(articles, encoding="utf-8") if line.strip())
    lines: list[str] = []
    start = time.perf_counter()
    expansion = synonym_expansion.defaults() if synonyms == "default" else None
    run_match(articles, queries, lines.append, top=top, settings=settings, examples_path=examples,
              synonyms=expansion)
    return [json.loads(line) for line in lines], time.perf_counter() - start


def score(outputs: list[dict], labels: dict[str, set[str]], suggestions: int = TOP, share: float = 0.0) -> dict:
    """P@1, Recall@3, MRR, and coverage, precision and articles shown of the replies `kb match` decided."""
    p1 = r3 = mrr = replied = right = shown_total = 0.0
    for out in outputs:
        ranked = [r["id"] for r in out["results"]]
        answers = labels[str(out["id"])]
        rank = next((k for k, article in enumerate(ranked) if article in answers), None)
        shown = shown_count([r["score"] for r in out["results"][:suggestions]], share)
        p1 += rank == 0
        r3 += rank is not None and rank < suggestions
        mrr += 0 if rank is None else 1 / (rank + 1)
        replied += out["reply"]
        right += out["reply"] and rank is not None and rank < shown
        shown_total += shown if out["reply"] else 0
    n = len(outputs) or 1
    return {"queries": len(outputs), "P@1": p1 / n, "R@3": r3 / n, "MRR": mrr / n,
            "coverage": replied / n, "precision": right / replied if replied else 1.0,
            "shown": shown_total / replied if replied else 0.0}


def cut_sweep(outputs: list[dict], labels: dict[str, set[str]]) -> None:
    """Precision of replies and articles shown per reply, for each relative cut of the suggestions."""
    print("cut  precision  shown  replies-losing-their-right-article")
    base = score(outputs, labels)
    for step in range(0, 95, 5):
        figures = score(outputs, labels, share=step / 100)
        lost = round((base["precision"] - figures["precision"]) * base["coverage"] * base["queries"])
        print(f"{step / 100:4.2f} {figures['precision']:9.3f} {figures['shown']:6.2f}  {lost}")


def held_out_matches(articles: Path, queries: Path, settings: dict, examples: Path | None = None) -> list[list[Match]]:
    """Each query matched with its right articles left out: questions the knowledge base cannot answer."""
    from kb.autoreply.decision import decide_parts
    from kb.autoreply.match_command import load_articles, load_examples, read_jsonl, with_examples
    from kb.autoreply.matcher import Matcher

    all_articles = load_articles(articles)
    if examples is not None:
        all_articles = with_examples(all_articles, load_examples(examples, {a.id for a in all_articles}))
    by_answer: dict[frozenset, list[dict]] = {}
    for _, item in read_jsonl(queries):
        by_answer.setdefault(frozenset(item["answer_ids"]), []).append(item)
    found = []
    for answers, items in by_answer.items():
        matcher = Matcher.from_articles([a for a in all_articles if a.id not in answers])
        for item in items:
            decision = decide_parts(item.get("subject", ""), item["body"], matcher, settings)
            found.append(decision.matches)
    return found


def sweep(outputs: list[dict], labels: dict[str, set[str]], held_out: list[list[Match]]) -> None:
    """Coverage, precision and false replies (to unanswerable questions) per threshold and margin."""
    print("threshold margin coverage precision false-replies  J=coverage*precision-false")
    for margin in (0.0, 0.02, 0.03, 0.05):
        for step in range(12, 27, 2):
            threshold = step / 100
            decided = []
            for out in outputs:
                matches = [Match(r["id"], r["score"]) for r in out["results"]]
                reply = out["reason"].startswith(RULE_FREE) and should_reply(matches, threshold, margin)[0]
                decided.append({**out, "reply": reply})
            figures = score(decided, labels)
            false = sum(should_reply(m, threshold, margin)[0] for m in held_out) / max(1, len(held_out))
            useful = figures["coverage"] * figures["precision"]
            print(f"{threshold:9.2f} {margin:6.2f} {figures['coverage']:8.3f} {figures['precision']:9.3f}"
                  f" {false:13.3f}  {useful - false:.3f}")


def main(argv: list[str] | None = None) -> None:
    """Evaluate one dataset split (or a saved `kb match` output) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", default="stackfaq")
    parser.add_argument("split", nargs="?", help="dev or test (none for sets with one queries.jsonl)")
    parser.add_argument("--sweep", action="store_true",
                        help="threshold and margin sweep, with each query's answer held out too (dev only)")
    parser.add_argument("--cut-sweep", action="store_true",
                        help="precision and articles shown per relative cut of the suggestions (dev only)")
    parser.add_argument("--eval-dir", type=Path, default=EVAL, help=f"where the datasets are (default {EVAL})")
    parser.add_argument("--results", type=Path, help="score this saved `kb match` output instead")
    parser.add_argument("--queries", type=Path, help="the labelled queries of --results")
    parser.add_argument("--examples", metavar="SPLIT|halves|FILE",
                        help="load labelled queries as example questions (benchmarks/eval_examples.py)")
    parser.add_argument("--synonyms", choices=("none", "default"), default="none",
                        help="expand queries with kb's default synonym sets (default: none)")
    args = parser.parse_args(argv)
    settings = load_config()
    articles, queries = dataset_paths(args.dataset, args.split, args.eval_dir)
    queries = args.queries or queries
    labels = {str(q["id"]): set(q["answer_ids"]) for q in map(json.loads, open(queries, encoding="utf-8"))}
    if args.examples:
        import eval_examples

        source = eval_examples.examples_source(args.examples, articles.parent, queries)
        outputs = eval_examples.report(articles, queries, source, settings, run, score, labels,
                                       relative_cut(settings))
        if args.sweep and source is not None:  # halves: each half would need its own held-out run
            sweep(outputs, labels, held_out_matches(articles, queries, settings, source))
        return
    if args.results:
        outputs, seconds = [json.loads(line) for line in open(args.results, encoding="utf-8")], 0.0
    else:
        outputs, seconds = run(articles, queries, settings, synonyms=args.synonyms)
    figures = score(outputs, labels, share=relative_cut(settings))
    threshold, margin = thresholds(settings)
    print(f"{queries}: {figures['queries']} queries, threshold {threshold}, margin {margin}, "
          f"relative cut {relative_cut(settings)}, synonyms {args.synonyms}"
          + (f", {seconds:.1f} s" if seconds else ""))
    print("  ".join(f"{key} {value:.3f}" for key, value in figures.items() if key != "queries"))
    if args.sweep:
        sweep(outputs, labels, held_out_matches(articles, queries, settings))
    if args.cut_sweep:
        cut_sweep(outputs, labels)


if __name__ == "__main__":
    main()
