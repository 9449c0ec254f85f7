"""The libraries a team could search with instead, on the benchmark's corpus: SQLite FTS5 and tantivy.

Both index the same articles (title weighted x2, English stemming) and answer the same query texts
as kb, as kb asks them: the words OR-ed (no word required), stop words left out, best 10 by BM25.
Neither corrects typos. SQLite FTS5 comes with Python; tantivy is an optional dependency:

    .venv/bin/pip install -e '.[bench]'        (or: .venv/bin/pip install tantivy)

Without it, only the tantivy column is left out (and the output says how to install it).
"""

from __future__ import annotations

import re
import sqlite3
import time

from kb.search.analysis import EN_STOP

WORD = re.compile(r"[a-z0-9]+")
TANTIVY_HINT = "tantivy is not installed: .venv/bin/pip install -e '.[bench]' (or pip install tantivy) adds its column"


def words(text: str) -> list[str]:
    """The query's distinct lowercased words, stop words left out (what both engines are asked for)."""
    return list(dict.fromkeys(w for w in WORD.findall(text.lower()) if w not in EN_STOP))[:24]


class Fts5:
    """An in-memory SQLite FTS5 table of the articles (porter stemming), ranked by bm25 with title x2."""

    name = "SQLite FTS5"

    def __init__(self, articles: list[dict]):
        start = time.perf_counter()
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute("CREATE VIRTUAL TABLE docs USING fts5(title, body, tokenize='porter unicode61')")
        self.db.executemany("INSERT INTO docs(rowid, title, body) VALUES (?, ?, ?)",
                            ((k, a["title"], a["body"]) for k, a in enumerate(articles)))
        self.db.commit()
        self.build_seconds = time.perf_counter() - start

    def search(self, text: str) -> list[int]:
        """Article positions of the best 10 for ``text``."""
        found = words(text)
        if not found:
            return []
        match = " OR ".join(f'"{w}"' for w in found)
        return [row[0] for row in self.db.execute(
            "SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY bm25(docs, 2.0, 1.0) LIMIT 10", (match,))]


class Tantivy:
    """An in-memory tantivy index of the articles (en_stem), the query parser's OR of the words, title x2."""

    name = "tantivy"

    def __init__(self, articles: list[dict]):
        import tantivy

        start = time.perf_counter()
        builder = tantivy.SchemaBuilder()
        builder.add_integer_field("pos", stored=True, indexed=False, fast=True)
        builder.add_text_field("title", tokenizer_name="en_stem")
        builder.add_text_field("body", tokenizer_name="en_stem")
        self.index = tantivy.Index(builder.build())
        writer = self.index.writer(heap_size=200_000_000, num_threads=2)
        for k, article in enumerate(articles):
            writer.add_document(tantivy.Document(pos=k, title=article["title"], body=article["body"]))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()
        self.build_seconds = time.perf_counter() - start

    def search(self, text: str) -> list[int]:
        """Article positions of the best 10 for ``text``."""
        found = words(text)
        if not found:
            return []
        query = self.index.parse_query(" ".join(found), ["title", "body"], field_boosts={"title": 2.0})
        hits = self.searcher.search(query, 10).hits
        return [self.searcher.doc(address)["pos"][0] for _score, address in hits]


def engines(articles: list[dict], out) -> list:
    """FTS5 and, if installed, tantivy, built on ``articles``; a note on ``out`` for a missing one."""
    made: list = [Fts5(articles)]
    try:
        import tantivy  # noqa: F401
    except ImportError:
        print(TANTIVY_HINT, file=out, flush=True)
        return made
    made.append(Tantivy(articles))
    return made


def time_engine(engine, queries: list[str], wanted: list[int]) -> tuple[list[float], int]:
    """Seconds per query and how many found their source article among the best 10."""
    for text in queries[:20]:  # warm up
        engine.search(text)
    times, found = [], 0
    for text, source in zip(queries, wanted):
        start = time.perf_counter()
        positions = engine.search(text)
        times.append(time.perf_counter() - start)
        found += source in positions
    return times, found
