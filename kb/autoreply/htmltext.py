"""HTML mail bodies to plain text that keeps its lines, so quotes and signatures stay findable.

html2text would fit, but it is GPL-3.0 and kb is MIT; kb.rendering.html_to_text collapses all
whitespace, which would glue a quoted reply onto the customer's text. So: a small converter.
<blockquote> content becomes "> " lines and <hr> becomes an Outlook-style underscore line,
which is exactly what the cleaner looks for.

It does not use the standard library's html.parser: on a tag that never closes ("<a <a <a ...")
that parser rescans the rest of the input from every "<", so 20 KB took 6 s and 80 KB 112 s
(CPython gh-135462, fixed only in later patch releases). The tokenizer below reads each
character once, as an HTML5 tokenizer does: a tag that runs to the end of the input ends the
input, it is never retried from the next "<".
"""

from __future__ import annotations

import html
import re

BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "li", "main", "nav", "ol",
    "p", "pre", "section", "table", "tr", "ul",
}
# Their text is never shown to a reader of the mail.
HIDDEN_TAGS = {"head", "script", "style", "template", "title", "noscript", "object"}
# Their content is raw text up to the matching end tag, never markup (as in html.parser).
RAW_TEXT_TAGS = {"script", "style"}
RULE_LINE = "_" * 32
# Past this many levels a line gets no more "> ": the cleaner drops quoted lines either way,
# and 100,000 nested <blockquote>s must not make every line 200 KB long.
MAX_QUOTE_PREFIX = 10

# What can follow "<": a start or end tag, a comment, or a declaration / processing instruction.
_MARKUP = re.compile(r"<(?:(/?)([A-Za-z][^\t\n\f\r />]*)|(!--)|([!?/]))")
# A tag's attributes up to its ">": quoted values may hold ">"; a stray quote or "=" is a character.
_ATTRIBUTES = re.compile(r"""(?:[^>"'=]+|=\s*"[^"]*"|=\s*'[^']*'|["'=])*""")
_SPACES = re.compile(r"[ \t\r\n\f\u200b\xa0]+")


class _TextCollector:
    """Collects lines of text from tag and text events; tracks hidden and blockquote nesting."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.current: list[str] = []
        self.hidden = 0
        self.quote_depth = 0
        self.in_pre = 0

    def line_break(self, force: bool = False) -> None:
        """End the current line; an empty one is kept only when forced (a <br>)."""
        text = "".join(self.current)
        text = text.rstrip() if self.in_pre else _SPACES.sub(" ", text).strip()
        if text or force:
            self.lines.append(("> " * min(self.quote_depth, MAX_QUOTE_PREFIX) + text).rstrip())
        self.current = []

    def start(self, tag: str) -> None:
        """A start tag (or a self-closing one)."""
        if tag in HIDDEN_TAGS:
            self.hidden += 1
        elif tag == "br":
            self.line_break(force=True)
        elif tag == "hr":
            self.line_break()
            self.lines.append(RULE_LINE)
        elif tag in {"td", "th"}:
            self.current.append(" ")
        elif tag in BLOCK_TAGS:
            self.line_break()
            if tag == "blockquote":
                self.quote_depth += 1
            elif tag == "li":
                self.current.append("- ")
            elif tag == "pre":
                self.in_pre += 1

    def end(self, tag: str) -> None:
        """An end tag."""
        if tag in HIDDEN_TAGS:
            self.hidden = max(0, self.hidden - 1)
        elif tag in BLOCK_TAGS:
            self.line_break()
            if tag == "p":
                self.lines.append("")  # paragraphs stay apart, as a reader sees them
            if tag == "blockquote":
                self.quote_depth = max(0, self.quote_depth - 1)
            elif tag == "pre":
                self.in_pre = max(0, self.in_pre - 1)

    def data(self, text: str) -> None:
        """Text between tags, entities already decoded."""
        if not self.hidden and text:
            self.current.append(text)


def _tokens(source: str, collector: _TextCollector) -> None:
    """Tokenize ``source`` in one pass, feeding the collector; each character is read once."""
    pos, end = 0, len(source)
    while pos < end:
        lt = source.find("<", pos)
        if lt < 0:
            collector.data(html.unescape(source[pos:]))
            return
        collector.data(html.unescape(source[pos:lt]))
        markup = _MARKUP.match(source, lt)
        if markup is None:  # "<" before a space, a digit...: text, as a browser shows it
            collector.data("<")
            pos = lt + 1
        elif markup.group(3):  # a comment runs to "-->" (or, unclosed, to the end)
            close = source.find("-->", markup.end())
            pos = end if close < 0 else close + 3
        elif markup.group(4):  # <!DOCTYPE>, <?xml ?>, </ 3>: skipped up to ">"
            close = source.find(">", markup.end())
            pos = end if close < 0 else close + 1
        else:
            pos = _tag(source, markup, collector)


def _tag(source: str, markup: re.Match[str], collector: _TextCollector) -> int:
    """Feed one start or end tag; returns where the text after it begins."""
    closing, name = markup.group(1), markup.group(2).lower()
    attributes = _ATTRIBUTES.match(source, markup.end())
    after = attributes.end()
    if after >= len(source):  # a tag cut off by the end of the input is dropped, as in HTML5
        return after
    if closing:
        collector.end(name)
        return after + 1
    collector.start(name)
    if name not in RAW_TEXT_TAGS:
        return after + 1
    close = re.compile(rf"</{name}[\t\n\f\r />]", re.IGNORECASE).search(source, after + 1)
    if close is None:  # an unclosed <script> hides the rest of the input
        return len(source)
    collector.end(name)
    gt = source.find(">", close.end() - 1)
    return len(source) if gt < 0 else gt + 1


def html_to_mail_text(source: str) -> str:
    """Convert an HTML mail body to plain text, one line per block, quotes as "> " lines."""
    collector = _TextCollector()
    _tokens(source, collector)
    collector.line_break()
    text = "\n".join(line.rstrip() for line in collector.lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
