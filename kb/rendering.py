"""Markdown to safe HTML, and to plain text for the index and snippets.

The portal, the editor's preview, the API and the indexer all call ``render`` (or its two
shorthands), so what an agent previews is exactly what customers see. ``render`` never raises
and never takes long: text that is too big, too deeply nested or too slow to render (see
``kb.render_limits`` and ``kb.render_sandbox``) comes back as escaped plain text, with a notice
for the agent that says what to change.
"""

from __future__ import annotations

import html
import logging
import re
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from typing import Iterable

import markdown
import nh3
from markdown.extensions.toc import slugify_unicode

from kb.render_limits import MAX_BODY_CHARS, shape_problem
from kb.render_sandbox import POOL, SandboxError, SandboxFailed, SandboxTimeout
from kb.textblocks import html_blocks, join_blocks

log = logging.getLogger(__name__)
# Seconds one render may take before the text is shown as plain text instead.
RENDER_TIME_LIMIT = 1.0
# Stored with cached HTML: a cache made by another renderer (or other limits) is made again.
RENDERER_VERSION = f"kb-2 markdown-{markdown.__version__} nh3-{version('nh3')}"
# Recent renders of article-sized texts, so rendering the same text again (an editor save after its
# preview, an import after ``prerender``) is free. Bounded: at most MEMO_SIZE texts of MEMO_MAX_CHARS.
MEMO_SIZE, MEMO_MAX_CHARS = 256, 20_000
PRERENDER_THREADS = 2  # renderer processes used at once by ``prerender``
_memo: OrderedDict[str, "Rendered"] = OrderedDict()
_memo_lock = threading.Lock()

EXTENSIONS = ["tables", "fenced_code", "toc", "sane_lists"]
EXTENSION_CONFIGS = {"toc": {"slugify": slugify_unicode, "permalink": False}}

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre",
    "s", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "tr", "ul",
}
ALLOWED_ATTRIBUTES = {
    "*": {"id", "title", "lang"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "code": {"class"},
    "td": {"class"},
    "th": {"class"},
    "ol": {"start"},
}
# No javascript:, vbscript: or data: URLs; relative URLs are kept.
URL_SCHEMES = {"http", "https", "mailto", "tel"}
# The tables extension writes alignment as an inline style, which our CSP blocks: use a class.
ALIGN_STYLE = re.compile(r'style="text-align: ?(left|right|center);?"')


TOO_SLOW = (f"Rendering took longer than {RENDER_TIME_LIMIT:g} s, so the article is shown as plain text. Look "
            "for very long lines, long runs of the same punctuation ([ * _ < > -) or huge tables, and shorten or "
            "split them; write a backslash before punctuation meant literally (\\[ \\*).")
BUSY = (f"The server was too busy to render the article within {RENDER_TIME_LIMIT:g} s, so it is shown as plain "
        "text for now; kb tries again.")
BUSY_GAVE_UP = (f"The server was too busy to render the article within {RENDER_TIME_LIMIT:g} s, three times, so it "
                "is shown as plain text. Save the article again when the server is quieter.")
FAILURES = {
    "recursion": ("The Markdown is nested too deeply to render (lists, quotes, emphasis, links or HTML inside "
                  "one another), so the article is shown as plain text. Reduce the nesting, or write a "
                  "backslash before punctuation meant literally (\\* \\_ \\[ \\>)."),
    "memory": ("Rendering needed too much memory, so the article is shown as plain text. Make it shorter or "
               "split it into several articles."),
    "crashed": ("The renderer stopped while rendering this text, so the article is shown as plain text. "
                "Simplify the Markdown around the last change."),
}
UNAVAILABLE = "The renderer failed, so the article is shown as plain text for now; kb tries again."


@dataclass(frozen=True)
class Rendered:
    """Safe HTML and plain text of an article body, and what went wrong if it fell back to plain text.

    ``problem`` is for the agent (empty when the Markdown rendered). ``final`` is false when the
    failure came from the server (busy, renderer down) rather than the text: a later try may work.
    """

    html: str
    text: str
    problem: str = ""
    final: bool = True


def render(text: str | None) -> Rendered:
    """Render Markdown to sanitised HTML and plain text; never raises, bounded in size and time."""
    text = clean_text(text)
    if not text.strip():
        return Rendered("", "")
    with _memo_lock:
        if text in _memo:
            _memo.move_to_end(text)
            return _memo[text]
    rendered = _render_bounded(text)
    if rendered.final and len(text) <= MEMO_MAX_CHARS:
        with _memo_lock:
            _memo[text] = rendered
            while len(_memo) > MEMO_SIZE:
                _memo.popitem(last=False)
    return rendered


def prerender(texts: Iterable[str]) -> None:
    """Render several texts in parallel renderer processes, so ``render`` then finds them done."""
    todo = [text for text in texts if len(text) <= MEMO_MAX_CHARS][:MEMO_SIZE]
    with ThreadPoolExecutor(max_workers=PRERENDER_THREADS, thread_name_prefix="kb-prerender") as pool:
        list(pool.map(render, todo))


def _render_bounded(text: str) -> Rendered:
    """Render a cleaned, non-empty text within the size, shape and time limits."""
    if len(text) > MAX_BODY_CHARS:
        return fallback(text, shape_problem(text))
    try:
        reply = POOL.render(text, RENDER_TIME_LIMIT)
    except SandboxTimeout as exc:
        return fallback(text, BUSY if exc.busy else TOO_SLOW, final=not exc.busy)
    except SandboxFailed as exc:
        kind = str(exc)
        return fallback(text, FAILURES.get(kind, f"The renderer failed ({kind}), so the article is shown as "
                                                  "plain text. Simplify the Markdown around the last change."))
    except SandboxError:
        log.warning("the Markdown renderer process is unavailable; rendering in this process", exc_info=True)
        return _render_here(text)
    if reply.get("problem"):
        return fallback(text, reply["problem"])
    return Rendered(reply["html"], reply["text"])


def _render_here(text: str) -> Rendered:
    """Render without a child process (none could start): the shape limits apply, the time limit cannot.

    Never final, so the text is rendered again, within the time limit, once a child starts.
    """
    problem = shape_problem(text)
    if problem:
        return fallback(text, problem, final=False)
    try:
        body_html = markdown_to_html(text)
        return Rendered(body_html, html_to_text(body_html), final=False)
    except RecursionError:
        return fallback(text, FAILURES["recursion"], final=False)
    except Exception:  # noqa: BLE001 - rendering must never raise
        log.warning("rendering failed", exc_info=True)
        return fallback(text, UNAVAILABLE, final=False)


def render_markdown(text: str | None) -> str:
    """Render Markdown to sanitised HTML: no script, handler, iframe or dangerous URL survives."""
    return render(text).html


def clean_text(text: str | None) -> str:
    """The text with NUL and unpaired surrogates (which no database or sanitiser accepts) replaced."""
    text = str(text or "")
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8") if _has_surrogates(text) else text


def _has_surrogates(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (possible from JSON "\\ud800")."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def fallback(text: str, problem: str, *, final: bool = True) -> Rendered:
    """The text escaped as plain paragraphs (safe and readable), with the agent's notice."""
    text = text[:MAX_BODY_CHARS]
    paragraphs = [part.strip("\n") for part in re.split(r"\n[ \t]*\n", text) if part.strip()]
    body = "".join(f"<p>{html.escape(part, quote=True)}</p>" for part in paragraphs)
    return Rendered(f'<div class="render-fallback">{body}</div>', " ".join(text.split()), problem, final)


def markdown_to_html(text: str) -> str:
    """Markdown to sanitised HTML in this process, with no bound on time (``render`` bounds it)."""
    raw = markdown.markdown(text, extensions=EXTENSIONS, extension_configs=EXTENSION_CONFIGS,
                            output_format="html")
    return sanitise_html(ALIGN_STYLE.sub(r'class="align-\1"', raw))


def sanitise_html(raw: str) -> str:
    """Clean untrusted HTML with nh3 (the Ammonia sanitiser) under kb's allow-list."""
    return nh3.clean(raw, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer",
                     strip_comments=True)


def plain_text(text: str | None) -> str:
    """The words of a Markdown article without markup, whitespace collapsed."""
    return render(text).text


def html_to_text(fragment: str) -> str:
    """The text of sanitised HTML, whitespace collapsed, blocks kept apart (kb.textblocks)."""
    return join_blocks(html_blocks(fragment))
