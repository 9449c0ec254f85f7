"""Markdown to safe HTML, and to plain text for the index and snippets.

The portal, the editor's preview, the API and the indexer all call these two functions,
so what an agent previews is exactly what customers see.
"""

from __future__ import annotations

import html
import re

import markdown
import nh3
from markdown.extensions.toc import slugify_unicode

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


def render_markdown(text: str) -> str:
    """Render Markdown to sanitised HTML: no script, handler, iframe or dangerous URL survives."""
    raw = markdown.markdown(text or "", extensions=EXTENSIONS, extension_configs=EXTENSION_CONFIGS,
                            output_format="html")
    return sanitise_html(ALIGN_STYLE.sub(r'class="align-\1"', raw))


def sanitise_html(raw: str) -> str:
    """Clean untrusted HTML with nh3 (the Ammonia sanitiser) under kb's allow-list."""
    return nh3.clean(raw, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer",
                     strip_comments=True)


def plain_text(text: str) -> str:
    """The words of a Markdown article without markup, whitespace collapsed."""
    return html_to_text(render_markdown(text))


def html_to_text(fragment: str) -> str:
    """Drop every tag (and script/style content) from HTML and collapse whitespace."""
    spaced = re.sub(r"<(/?(p|div|li|h[1-6]|tr|td|th|br|pre|blockquote|dd|dt)\b)", r" <\1", fragment)
    stripped = nh3.clean(spaced, tags=set(), attributes={})
    return " ".join(html.unescape(stripped).split())
