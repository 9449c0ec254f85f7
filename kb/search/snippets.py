"""Result snippets: escaped plain text around the best cluster of hits, hits in <mark>."""

from __future__ import annotations

import html
import re

from kb.search.spans import hit_spans
from kb.textblocks import SEPARATOR

SNIPPET_SCAN = 8000
LOOK_BACK = 80  # how far before the first hit a snippet may start, to start at a sentence or block
BOUNDARY = re.compile(r"[.!?;:…]\s+|[。！？；：]|\s—\s")


def snippet(plain: str, group: str, wanted: set[str], width: int = 200) -> str:
    """About ``width`` characters of ``plain`` around the best cluster of hits, hits in <mark>."""
    # Only the start of a long article is scanned: a snippet from its first pages is enough.
    spans = _merge([(start, end) for _term, start, end in hit_spans(group, plain[:SNIPPET_SCAN], wanted)])
    start, end = _window(plain, spans, width)
    out, pos = ["…" if start > 0 else ""], start
    for s, e in spans:
        if s >= pos and e <= end:
            out += [_esc(plain[pos:s]), "<mark>", _esc(plain[s:e]), "</mark>"]
            pos = e
    out += [_esc(plain[pos:end]), "…" if end < len(plain) else ""]
    return "".join(out)


def _window(plain: str, spans: list[tuple[int, int]], width: int) -> tuple[int, int]:
    """Where the snippet starts and ends: at a sentence or block start if one is near, on word edges."""
    start = _best_window(spans, width)
    if start > 0:
        first_hit = next((s for s, _e in spans if s >= start), start)
        boundaries = list(BOUNDARY.finditer(plain, max(0, first_hit - LOOK_BACK), first_hit))
        if boundaries:
            start = boundaries[-1].end()
        else:
            space = plain.find(" ", start, start + 20)
            start = space + 1 if space != -1 else start
    end = min(len(plain), start + width)
    if end < len(plain):
        space = plain.rfind(" ", end - 30, end)
        end = space if space > start else end
    # Never start or end on a block separator.
    while plain.startswith(SEPARATOR.lstrip(), start):
        start += len(SEPARATOR.lstrip())
    while end > start and plain[:end].rstrip().endswith(SEPARATOR.strip()):
        end = len(plain[:end].rstrip()) - len(SEPARATOR.strip())
    return start, max(end, start)


def _esc(text: str) -> str:
    """Escape text for HTML (quotes too, so a snippet is safe in any context)."""
    return html.escape(text, quote=True)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping spans (jieba's search mode yields overlapping words)."""
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and s < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def _best_window(spans: list[tuple[int, int]], width: int) -> int:
    """Start of the window of ``width`` chars holding the most hits (0 if there are none)."""
    best, best_count = 0, 0
    for s, _e in spans[:100]:
        start = max(0, s - 40)
        count = sum(1 for s2, e2 in spans if s2 >= start and e2 <= start + width)
        if count > best_count:
            best, best_count = start, count
    return best
