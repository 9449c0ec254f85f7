"""The text of rendered HTML for the index and its snippets, with the boundaries between blocks kept.

Joining blocks with a bare space runs a heading into the prose after it ("The refund timeline
Step How long ..."). Here a block that does not end a sentence is followed by " — "; one that
does (".", "?", "。" ...) by a space, so no punctuation is ever added after a "?". A "?." or "!."
in the text itself (a link to "How do I return an item?" followed by a full stop) loses the ".".
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

SEPARATOR = " — "
SENTENCE_END = tuple(".!?:;…。！？：；")
BLOCK_TAGS = frozenset({"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th", "br", "pre",
                        "blockquote", "dd", "dt", "table", "thead", "tbody", "tfoot", "ul", "ol", "dl", "hr"})
QUESTION_STOP = re.compile(r"([?!])\.(?=\s|$)")


class _Blocks(HTMLParser):
    """Collects the text of each block of sanitised HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[list[str]] = [[]]

    def handle_starttag(self, tag, attrs) -> None:
        """A block's start ends the block before it."""
        if tag in BLOCK_TAGS:
            self.blocks.append([])

    def handle_endtag(self, tag) -> None:
        """A block's end starts a new one."""
        if tag in BLOCK_TAGS:
            self.blocks.append([])

    def handle_data(self, data) -> None:
        """Text belongs to the current block."""
        self.blocks[-1].append(data)


def html_blocks(html: str) -> list[str]:
    """The non-empty blocks of an HTML fragment, whitespace collapsed, "?." made "?"."""
    parser = _Blocks()
    parser.feed(html)
    parser.close()
    texts = (" ".join("".join(parts).split()) for parts in parser.blocks)
    return [QUESTION_STOP.sub(r"\1", text) for text in texts if text]


def join_blocks(blocks: list[str]) -> str:
    """Blocks as one line: " — " after a block that does not end a sentence, else a space."""
    out = ""
    for block in blocks:
        if out:
            out += " " if out.endswith(SENTENCE_END) else SEPARATOR
        out += block
    return out
