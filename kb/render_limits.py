"""Shape limits checked before Markdown is rendered: cheap, linear scans with a precise message.

Python-Markdown recurses once per level of nesting (lists, quotes, emphasis, links) and is
quadratic or worse on long runs of unclosed brackets or HTML tags. The renderer's time limit
(see ``kb.render_sandbox``) catches every slow input in the end; these checks catch the known
shapes in milliseconds and can tell the agent which line to change. The limits are far above
anything a help article needs.
"""

from __future__ import annotations

import re

MAX_BODY_CHARS = 500_000
MAX_NESTING = 100  # lists and quotes, links, HTML elements inside one another
MAX_OPEN_EMPHASIS = 200  # * and _ opened and not yet closed

_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(?<!\\)(`+)(?!`).+?(?<!`)\1(?!`)")
_BLOCK_PREFIX = re.compile(r"^(?:[ \t]*>)+|^[ \t]*")
_LIST_MARKER = re.compile(r"(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")
_THEMATIC_BREAK = re.compile(r"^[ ]{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_BRACKET = re.compile(r"\\.|[\[\]]")
_EMPHASIS_RUN = re.compile(r"\\.|([*_])\1*")
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)(?:\s[^<>]*?)?(/?)>")
# Elements that never hold content, or whose end tag HTML lets authors leave out.
_NOT_NESTING = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "thead", "tbody", "tfoot",
                "colgroup", "rt", "rp", "optgroup"}


def shape_problem(text: str) -> str:
    """Why ``text`` is too big or too deeply nested to render safely, as advice; "" if it is fine."""
    if len(text) > MAX_BODY_CHARS:
        return (f"The article has {len(text):,} characters; kb renders at most {MAX_BODY_CHARS:,}. "
                "Split it into several articles.")
    lines = _prose_lines(text)
    for check in (_block_nesting, _bracket_nesting, _emphasis_nesting, _html_nesting):
        problem = check(lines)
        if problem:
            return problem
    return ""


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of the lines outside fenced code, with inline code spans blanked."""
    out, fence = [], None
    for number, line in enumerate(text.split("\n"), start=1):
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)[0]
            continue
        if fence is not None:
            if opening and opening.group(1)[0] == fence:
                fence = None
            continue
        out.append((number, _CODE_SPAN.sub(" ", line) if "`" in line else line))
    return out


def _block_nesting(lines) -> str:
    """Lists and quotes nested too deep: counted from each line's '>' markers and indentation."""
    for number, line in lines:
        prefix = _BLOCK_PREFIX.match(line).group(0)
        rest = line[len(prefix):]
        if not (prefix.count(">") or _LIST_MARKER.match(rest)):
            continue
        indent = len(prefix.replace(">", "").expandtabs(4))
        depth = prefix.count(">") + indent // 4 + (1 if _LIST_MARKER.match(rest) else 0)
        if depth > MAX_NESTING:
            return (f"Line {number} is nested {depth} levels deep (lists or quotes inside one another); "
                    f"kb renders at most {MAX_NESTING}. Remove indentation or '>' markers there.")
    return ""


def _blocks(lines):
    """The lines grouped into blocks: a blank line ends a paragraph (and any open brackets)."""
    block = []
    for number, line in lines:
        if line.strip():
            block.append((number, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _bracket_nesting(lines) -> str:
    """'[' opened and not closed, within one paragraph: each one is a possible link inside a link."""
    for block in _blocks(lines):
        depth = 0
        for number, line in block:
            for token in _BRACKET.finditer(line):
                if token.group(0) == "[":
                    depth += 1
                    if depth > MAX_NESTING:
                        return (f"Line {number} opens more than {MAX_NESTING} '[' that are not closed "
                                "(links inside links). Close them, or write \\[ for a bracket meant literally.")
                elif token.group(0) == "]" and depth:
                    depth -= 1
    return ""


def _emphasis_nesting(lines) -> str:
    """'*' and '_' that open emphasis and are not closed, within one paragraph."""
    for block in _blocks(lines):
        depth = 0
        for number, line in block:
            if _THEMATIC_BREAK.match(line):
                continue
            for run in _EMPHASIS_RUN.finditer(line):
                if not run.group(1):
                    continue  # an escaped character
                before = line[run.start() - 1] if run.start() else " "
                after = line[run.end()] if run.end() < len(line) else " "
                if not after.isspace() and (before.isspace() or not before.isalnum()):
                    depth += len(run.group(0))  # opens emphasis
                elif not before.isspace():
                    depth = max(0, depth - len(run.group(0)))  # closes emphasis
                if depth > MAX_OPEN_EMPHASIS:
                    return (f"Line {number} opens more than {MAX_OPEN_EMPHASIS} '*' or '_' for emphasis without "
                            "closing them. Remove them, or write \\* or \\_ for characters meant literally.")
    return ""


def _html_nesting(lines) -> str:
    """HTML elements opened and not closed, across the whole article (HTML blocks span paragraphs)."""
    depth = 0
    for number, line in lines:
        if "<" not in line:
            continue
        for tag in _TAG.finditer(line):
            closing, name, self_closing = tag.groups()
            if name.lower() in _NOT_NESTING or self_closing:
                continue
            depth = max(0, depth - 1) if closing else depth + 1
            if depth > MAX_NESTING:
                return (f"Line {number} has HTML elements nested more than {MAX_NESTING} deep (for example "
                        f"<{name}> opened and never closed). Close the tags, or remove the HTML.")
    return ""
