"""Real English text for benchmarks, without network: docstrings of the installed Python code.

Docstrings of the standard library and the packages in this virtualenv are read with ``ast``
(nothing is imported or executed), cut into articles of 100-400 words and cached under
benchmarks/.cache so later runs start at once.
"""

from __future__ import annotations

import ast
import json
import random
import re
import sys
import sysconfig
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"
SKIP_PARTS = {"test", "tests", "testing", "idlelib", "lib2to3", "turtledemo"}


def _source_files():
    """Python files of the stdlib, then site-packages, in a stable order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    purelib = Path(sysconfig.get_paths()["purelib"])
    for root in (stdlib, purelib):
        for path in sorted(root.rglob("*.py")):
            if SKIP_PARTS.isdisjoint(path.parts) and (root == purelib or "site-packages" not in path.parts):
                yield root, path


def _docstrings(path: Path):
    """Docstrings of a module, its classes and functions (parsed, never imported)."""
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc and len(doc.split()) >= 20:
                yield doc


def _grouped(docs, low: int = 100, high: int = 400):
    """Cut one file's docstrings, paragraph by paragraph, into bodies of ``low`` to ``high`` words."""
    group: list[str] = []
    size = 0
    for doc in docs:
        for para in re.split(r"\n\s*\n", doc):
            words = para.split()
            if not words:
                continue
            group.append(" ".join(words[: high - size]) if size + len(words) > high else para.strip())
            size = min(high, size + len(words))
            if size >= low:
                yield group
                group, size = [], 0


def _title(doc: str) -> str:
    """The docstring's first sentence, cut to about ten words."""
    first = re.split(r"(?<=[.!?])\s|\n\n", doc.strip(), maxsplit=1)[0]
    words = first.replace("\n", " ").split()[:10]
    return " ".join(words).strip(" .:") or "Untitled"


def build_articles(count: int) -> list[dict]:
    """``count`` articles of real prose: {"title", "body", "category"}; cached on disk.

    Beyond the docstrings at hand (about 18,000 articles in kb's virtualenv), the rest are
    recombined from their paragraphs (``_recombined``): the same vocabulary, longer posting lists.
    """
    CACHE.mkdir(exist_ok=True)
    cache, everything = CACHE / f"articles-{count}.jsonl", CACHE / "articles-all.jsonl"
    if cache.exists():
        return _read(cache)
    if everything.exists():  # the walk is deterministic: its first ``count`` are the articles asked for
        base = _read(everything)
        return base[:count] if len(base) >= count else base + _recombined(base, count - len(base))
    articles: list[dict] = []
    seen: set[str] = set()
    for root, path in _source_files():
        category = path.relative_to(root).parts[0].removesuffix(".py")
        for docs in _grouped(_docstrings(path)):
            body = "\n\n".join(docs)
            if body in seen:
                continue
            seen.add(body)
            articles.append({"title": _title(docs[0]), "body": body, "category": category[:60]})
            if len(articles) == count:
                _write(cache, articles)
                return articles
    if len(articles) < 100:
        sys.exit(f"only {len(articles)} articles of docstrings found; install more packages")
    _write(everything, articles)
    return articles + _recombined(articles, count - len(articles))


def joined_articles(n: int, join: int) -> list[dict]:
    """``n`` articles, each ``join`` of build_articles' in a row (title and category of the first)."""
    if join == 1:
        return build_articles(n)
    corpus = build_articles(n * join)
    return [{"title": f"{parts[0]['title']} ({k + 1})", "category": parts[0]["category"],
             "body": "\n\n".join(part["body"] for part in parts)}
            for k, parts in enumerate(corpus[i:i + join] for i in range(0, n * join, join))]


def chinese_articles(count: int, seed: int = 3) -> list[dict]:
    """``count`` Chinese articles (``"lang": "zh"``) of about 290 characters: sentences of words drawn
    from jieba's own dictionary by its frequencies. Not prose, but words as jieba knows them, in the
    proportions Chinese text has them: what segmenting and indexing Chinese costs."""
    import jieba

    words, weights = [], []
    with open(Path(jieba.__file__).parent / "dict.txt", encoding="utf-8") as lines:
        for line in lines:
            word, frequency, *_ = line.split()
            words.append(word)
            weights.append(int(frequency))
    rng = random.Random(seed)
    return [{"title": "".join(rng.choices(words, weights, k=4)) + f"？{i}", "category": "常见问题", "lang": "zh",
             "body": "".join("".join(rng.choices(words, weights, k=rng.randint(8, 20))) + "。" for _ in range(12))}
            for i in range(count)]


def _read(path: Path) -> list[dict]:
    """The articles of a cache file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, articles: list[dict]) -> None:
    """Keep articles in a cache file."""
    path.write_text("".join(json.dumps(a) + "\n" for a in articles), encoding="utf-8")


def _recombined(base: list[dict], extra: int, seed: int = 11) -> list[dict]:
    """``extra`` more articles of 100-400 words, each made of paragraphs drawn at random from ``base``."""
    rng = random.Random(seed)
    paragraphs = [p.strip() for a in base for p in re.split(r"\n\s*\n", a["body"]) if p.strip()]
    out = []
    for _ in range(extra):
        parts: list[str] = []
        size = 0
        while size < 100:
            words = rng.choice(paragraphs).split()[:400 - size]
            parts.append(" ".join(words))
            size += len(words)
        out.append({"title": _title(parts[0]), "body": "\n\n".join(parts), "category": rng.choice(base)["category"]})
    return out


def sample_queries(articles: list[dict], n: int = 200, seed: int = 42) -> list[str]:
    """``n`` queries of one to three words drawn from the articles' titles, reproducibly."""
    return [query for query, _source in sample_targets(articles, n, seed)]


def sample_targets(articles: list[dict], n: int = 200, seed: int = 42) -> list[tuple[str, int]]:
    """The queries of ``sample_queries``, each with the index of the article whose title it came from."""
    rng = random.Random(seed)
    queries = []
    while len(queries) < n:
        source = rng.randrange(len(articles))
        words = [w for w in re.findall(r"[a-zA-Z]{4,}", articles[source]["title"])]
        if words:
            start = rng.randrange(len(words))
            queries.append((" ".join(words[start:start + rng.randint(1, 3)]).lower(), source))
    return queries


PROSE_WORD = re.compile(r"[A-Za-z][a-z'-]*[,.;:]?")
OPENERS = ("how do I", "why does", "what happens when", "can I", "is there a way to make sure that",
           "I read that", "what does it mean that", "help, I don't understand why")


def sample_sentences(articles: list[dict], n: int = 100, seed: int = 43) -> list[tuple[str, int]]:
    """``n`` whole-sentence questions, each with the article it came from, reproducibly.

    A question is a sentence of 6 to 16 words from an article's body (its first 16 words if
    longer), lowercased, after an opener such as "how do I" and with a question mark: the shape of
    what customers type into a help centre.
    """
    rng = random.Random(seed)
    questions: list[tuple[str, int]] = []
    while len(questions) < n:
        source = rng.randrange(len(articles))
        sentences = [s.split() for s in re.split(r"(?<=[.!?])\s+", articles[source]["body"])]
        sentences = [s for s in sentences if len(s) >= 6 and _prose(s[:16])]
        if sentences:
            words = rng.choice(sentences)[:16]
            text = " ".join(words).rstrip(".!?:;,").lower()
            questions.append((f"{rng.choice(OPENERS)} {text}?", source))
    return questions


def _prose(words: list[str]) -> bool:
    """Whether a sentence's words read as prose: no code, no tables, mostly plain words."""
    return sum(bool(PROSE_WORD.fullmatch(w)) for w in words) >= 0.9 * len(words)
