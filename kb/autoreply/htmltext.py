"""HTML mail bodies to plain text that keeps its lines, so quotes and signatures stay findable.

html2text would fit, but it is GPL-3.0 and kb is MIT; kb.rendering.html_to_text collapses all
whitespace, which would glue a quoted reply onto the customer's text. So: a small converter
over the standard library's html.parser. <blockquote> content becomes "> " lines and <hr>
becomes an Outlook-style underscore line, which is exactly what the cleaner looks for.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "li", "main", "nav", "ol",
    "p", "pre", "section", "table", "tr", "ul",
}
# Their text is never shown to a reader of the mail.
HIDDEN_TAGS = {"head", "script", "style", "template", "title", "noscript", "object"}
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
             "track", "wbr"}
RULE_LINE = "_" * 32


class _TextCollector(HTMLParser):
    """Collects lines of text; tracks hidden and blockquote nesting."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.hidden = 0
        self.quote_depth = 0
        self.in_pre = 0

    def _break(self, force: bool = False) -> None:
        """End the current line; an empty one is kept only when forced (a <br>)."""
        text = "".join(self.current)
        text = text.rstrip() if self.in_pre else re.sub(r"[ \t\r\n\f\u200b\xa0]+", " ", text).strip()
        if text or force:
            self.lines.append(("> " * self.quote_depth + text).rstrip())
        self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN_TAGS:
            self.hidden += 1
        elif tag == "br":
            self._break(force=True)
        elif tag == "hr":
            self._break()
            self.lines.append(RULE_LINE)
        elif tag in BLOCK_TAGS or tag in {"td", "th"}:
            if tag in {"td", "th"}:
                self.current.append(" ")
            else:
                self._break()
            if tag == "blockquote":
                self.quote_depth += 1
            elif tag == "li":
                self.current.append("- ")
            elif tag == "pre":
                self.in_pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_TAGS:
            self.hidden = max(0, self.hidden - 1)
        elif tag in BLOCK_TAGS:
            self._break()
            if tag == "p":
                self.lines.append("")  # paragraphs stay apart, as a reader sees them
            if tag == "blockquote":
                self.quote_depth = max(0, self.quote_depth - 1)
            elif tag == "pre":
                self.in_pre = max(0, self.in_pre - 1)

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.current.append(data)


def html_to_mail_text(html: str) -> str:
    """Convert an HTML mail body to plain text, one line per block, quotes as "> " lines."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    collector._break()
    text = "\n".join(line.rstrip() for line in collector.lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
