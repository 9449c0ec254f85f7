"""Where the repeated mix's CPU goes: one process serving load.py's mix in order, timed by kind of request.

Run:  .venv/bin/python benchmarks/mix_cpu.py --data /tmp/kb-l10k     (a site load.py built and kept)

The page file is deleted first (as after a new release), then the Flask test client (no cookies:
every request a new visitor, as load.py's clients) sends the mix's warm-up and its requests one by
one. Each measured request's CPU time goes to its kind (API answer, search page, article page) and
to whether the host had served its address before: a first render or a kept page.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import load  # noqa: E402

KINDS = {"/api/search": "API answer", "/en/search": "search page", "/en/articles": "article page"}


def kind_of(path: str) -> str:
    """The kind of a mix request, by its path."""
    return next(name for prefix, name in KINDS.items() if path.startswith(prefix))


def main(argv: list[str] | None = None) -> None:
    """Serve the mix in one process and print CPU by kind and by first render or kept page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a site folder load.py built (--data)")
    parser.add_argument("--requests", type=int, default=3000, help="measured requests (after 300 of warm-up)")
    args = parser.parse_args(argv)
    site = json.loads((args.data / "site.json").read_text())
    mix = load.zipf_mix(site["queries"], site["slugs"], args.requests + 300)
    for path in (args.data / "instance").glob(load.PAGE_FILE + "*"):
        path.unlink()
    from kb.cli import close_app
    from kb.web import create_app

    app = create_app(load.settings(args.data) | {"JOBS_RUNNER": False})
    try:
        client, seen, spent = app.test_client(use_cookies=False), set(), {}
        for i, path in enumerate(mix):
            first, began = path not in seen, time.process_time()
            seen.add(path)
            status = client.get(path).status_code
            if status != 200:
                raise SystemExit(f"{path} answered {status}")
            if i >= 300:
                count_cpu = spent.setdefault((kind_of(path), "first render" if first else "kept page"), [0, 0.0])
                count_cpu[0] += 1
                count_cpu[1] += time.process_time() - began
    finally:
        close_app(app)
    total = sum(cpu for _n, cpu in spent.values())
    print(f"{args.requests:,} requests of the mix in one process: {total:.2f} s of CPU\n")
    print("| kind | requests | ms each | s in all | share |\n|---|---:|---:|---:|---:|")
    for (kind, how), (n, cpu) in sorted(spent.items()):
        print(f"| {kind}, {how} | {n:,} | {cpu / n * 1000:.2f} | {cpu:.2f} | {cpu / total:.0%} |")


if __name__ == "__main__":
    main()
