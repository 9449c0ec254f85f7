"""Revision diffs with difflib, as lines tagged with CSS classes (no inline styles)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from kb.models import Revision


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified diff and the CSS class that colours it."""

    css: str
    text: str


def revision_text(revision: Revision) -> list[str]:
    """A revision as lines: its metadata first, so a changed title or tag shows in the diff too."""
    header = [f"Title: {revision.title}", f"Language: {revision.lang}",
              f"Category: {revision.category}", f"Tags: {', '.join(revision.tags or [])}", ""]
    return header + revision.body_md.splitlines()


def _css(line: str) -> str:
    """The CSS class of a unified-diff line."""
    if line.startswith(("---", "+++")):
        return "diff-file"
    if line.startswith("@@"):
        return "diff-hunk"
    return {"+": "diff-add", "-": "diff-del"}.get(line[:1], "diff-context")


def revision_diff(old: Revision, new: Revision, context: int = 3) -> list[DiffLine]:
    """The unified diff from ``old`` to ``new``; empty when their content is the same."""
    lines = difflib.unified_diff(revision_text(old), revision_text(new), fromfile=f"revision {old.number}",
                                 tofile=f"revision {new.number}", n=context, lineterm="")
    return [DiffLine(_css(line), line) for line in lines]
