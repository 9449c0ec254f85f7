"""Markdown bodies that broke or stalled the renderer: deep nesting of every kind, huge lines, slow shapes.

Shared by the unit tests (tests/test_render_poison.py) and the real-gunicorn tests.
"""

from __future__ import annotations

# Each raised RecursionError, or took from seconds to minutes, in Python-Markdown 3.11.
POISON = {
    "emphasis-stars-4kb": "*" * 2000 + "x" + "*" * 2000,
    "emphasis-underscores": "_" * 2000 + "x" + "_" * 2000,
    "emphasis-nested-words": "*a **b " * 400 + "c** d* " * 400,
    "strong-emphasis-runs": "***" * 1000 + "x" + "***" * 1000,
    "list-nested-300": "".join("    " * i + "- a\n" for i in range(300)),
    "ordered-list-nested-300": "".join("    " * i + "1. a\n" for i in range(300)),
    "table-in-deep-list": "".join("    " * i + "- |a|\n" for i in range(300)),
    "quotes-nested-900": "".join(">" * i + " x\n" for i in range(1, 900)),
    "quotes-spaced-one-line": "> " * 5000 + "x",
    "quotes-and-lists": "".join("> " * i + "- x\n" for i in range(1, 600)),
    "html-div-500kb": "<div>" * 99_999,
    "html-div-lines": "<div>\n" * 80_000,
    "html-inline-nesting": "<b><i>" * 5000 + "x",
    "links-nested": "[" * 5000 + "x" + "](y)" * 5000,
    "brackets-15kb": "[" * 15000,
    "brackets-spaced": "[ " * 7500,
    "footnote-like-brackets": "[^" * 7500,
    "image-brackets": "![" * 7500,
    "huge-single-line": "word *em* [link](http://x.example) `code` " * 11000,
    "thematic-breaks": "- - -\n" * 30000,
    "setext-headings": "a\n=\n" * 30000,
    "duplicate-headings": "# h\n" * 20000,
    "reference-links": "".join(f"[r{i}]: http://x/{i}\n" for i in range(8000)) + "".join(f"[a][r{i}] " for i in range(8000)),
    "reference-uses": "[a]: http://x\n\n" + "[a] " * 100000,
    "code-spans": "`a` " * 100000,
    "autolinks": "<http://a>" * 40000,
    "tables-wide": "|" + "a|" * 50000 + "\n|" + "-|" * 50000 + "\n",
    "tables-long": "|a|b|\n|-|-|\n" + "|x|y|\n" * 60000,
    "fences-unclosed": "```\n" * 100000,
    "angle-brackets": "<" * 400000,
}

# The ones the issue names, for the slower end-to-end tests.
NAMED = ("emphasis-stars-4kb", "list-nested-300", "quotes-nested-900", "brackets-15kb", "html-div-500kb",
         "thematic-breaks")
