"""`kb match`: run the worker's own decision pipeline over JSON Lines files, never the database.

Articles are {"id", "title", "body"} plus an optional "lang"; queries are {"id"} plus either
"subject" and "body", or "raw" (a whole RFC 5322 message). One JSON line is printed per query:
{"id", "results": [{"id", "score"}], "reply", "reason"}; a result an example question drove also
has "example" and "example_score". ``--examples`` lines are queries with "answer_ids": each
becomes an example question of the articles it names, in memory only (the database is never
written).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from kb.autoreply.decision import TOP, Decision, decide, decide_parts
from kb.autoreply.matcher import MatchArticle, Matcher
from kb.autoreply.parsing import ParseError, parse_message
from kb.capture.scrub import scrub
from kb.config import load_config
from kb.errors import KBError


class MatchInputError(KBError):
    """A line of an articles or queries file that `kb match` cannot use; says file and line."""


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON Lines file."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MatchInputError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(item, dict) or "id" not in item:
                raise MatchInputError(f'{path}:{number}: each line must be a JSON object with an "id"')
            yield number, item


def load_articles(path: Path) -> list[MatchArticle]:
    """The articles of a JSON Lines file ({"id", "title", "body"}, optional "lang")."""
    articles = []
    for number, item in read_jsonl(path):
        if not isinstance(item.get("title", ""), str) or not isinstance(item.get("body", ""), str):
            raise MatchInputError(f'{path}:{number}: "title" and "body" must be strings')
        articles.append(MatchArticle(str(item["id"]), item.get("title") or "", item.get("body") or "",
                                     item.get("lang") or None))
    return articles


def example_text(item: Mapping[str, Any]) -> str:
    """The question of a query line as an example keeps it: subject and cleaned text, scrubbed."""
    if isinstance(item.get("raw"), str):
        email = parse_message(item["raw"])
        subject, body = email.clean_subject, email.clean_text
    else:
        subject, body = item.get("subject") or "", item.get("body") or ""
        if not isinstance(subject, str) or not isinstance(body, str):
            raise ValueError('"subject" and "body" must be strings')
    return " ".join(scrub(f"{subject}\n{body}").split())


def load_examples(path: Path, article_ids: set[str]) -> dict[str, list[str]]:
    """Example questions per article id from a JSON Lines file of queries with "answer_ids"."""
    found: dict[str, list[str]] = {}
    for number, item in read_jsonl(path):
        answers = item.get("answer_ids")
        if not isinstance(answers, list) or not answers or not all(isinstance(a, (str, int)) for a in answers):
            raise MatchInputError(f'{path}:{number}: "answer_ids" must be a non-empty list of article ids')
        unknown = sorted(str(a) for a in answers if str(a) not in article_ids)
        if unknown:
            raise MatchInputError(f"{path}:{number}: no article with the id {unknown[0]!r}")
        try:
            text = example_text(item)
        except (ValueError, ParseError) as exc:
            raise MatchInputError(f"{path}:{number}: {exc}") from exc
        if not text:
            raise MatchInputError(f"{path}:{number}: the question is empty")
        for answer in dict.fromkeys(str(a) for a in answers):
            if text not in found.setdefault(answer, []):
                found[answer].append(text)
    return found


def with_examples(articles: list[MatchArticle], examples: Mapping[str, list[str]]) -> list[MatchArticle]:
    """The articles, each carrying its example questions."""
    return [replace(a, examples=(*a.examples, *examples.get(a.id, ()))) for a in articles]


def decide_query(item: Mapping[str, Any], matcher: Matcher, settings: Mapping[str, Any],
                 top: int = TOP) -> Decision:
    """The worker's decision for one query: a raw message, or a subject and body."""
    if isinstance(item.get("raw"), str):
        return decide(item["raw"], matcher, settings, top=top)
    return decide_parts(str(item.get("subject") or ""), str(item.get("body") or ""), matcher,
                        settings, top=top)


def result_line(query_id: Any, decision: Decision) -> str:
    """One output line: {"id", "results": [{"id", "score"}], "reply", "reason"}."""
    results = [{"id": m.article_id, "score": m.score,
                **({"example": m.example, "example_score": m.example_score} if m.example else {})}
               for m in decision.matches]
    return json.dumps({"id": query_id, "results": results, "reply": decision.reply,
                       "reason": decision.reason}, ensure_ascii=False)


def run_match(articles_path: Path, queries_path: Path, emit: Callable[[str], None], *,
              top: int = TOP, settings: Mapping[str, Any] | None = None,
              examples_path: Path | None = None, synonyms=None) -> int:
    """Fit a throwaway matcher on the articles (with the example questions of ``examples_path``),
    emit one line per query; return the query count.

    ``synonyms``: a ``kb.autoreply.synonym_expansion.Expansion`` the queries are expanded with.
    """
    settings = load_config() if settings is None else settings
    articles = load_articles(articles_path)
    if examples_path is not None:
        articles = with_examples(articles, load_examples(examples_path, {a.id for a in articles}))
    matcher = Matcher.from_articles(articles, settings.get("DEFAULT_LANGUAGE") or "en")
    if synonyms is not None:
        matcher = matcher.with_synonyms(synonyms)
    count = 0
    for _, item in read_jsonl(queries_path):
        emit(result_line(item["id"], decide_query(item, matcher, settings, top)))
        count += 1
    return count


@click.command("match")
@click.option("--articles", "articles_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON Lines of articles: {"id", "title", "body"}, optional "lang".')
@click.option("--queries", "queries_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON Lines of queries: {"id", "subject", "body"} or {"id", "raw"}.')
@click.option("--top", default=TOP, show_default=True, type=click.IntRange(min=1),
              help="How many suggestions to print per query.")
@click.option("--examples", "examples_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON Lines of answered questions, shaped like the queries plus "answer_ids": each '
                   "becomes an example question of the articles it names (in memory only).")
def match_command(articles_path: Path, queries_path: Path, top: int, examples_path: Path | None) -> None:
    """Show what the auto-responder would do with each query (never touches the database)."""
    try:
        run_match(articles_path, queries_path, click.echo, top=top, examples_path=examples_path)
    except KBError as exc:
        raise click.ClickException(str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"input files must be UTF-8: {exc}") from exc
