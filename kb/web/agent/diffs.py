"""Revision diffs with difflib, as lines tagged with CSS classes (no inline styles)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from kb.models import Revision

NOT_RECORDED = "(not recorded)"


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified diff and the CSS class that colours it."""

    css: str
    text: str


def revision_status(revision: Revision) -> str:
    """The revision's status as the diff shows it; a draft of a live article says it was not live."""
    status = revision.status or NOT_RECORDED
    return f"{status} (draft of changes, not live)" if revision.pending else status


def revision_text(revision: Revision, *, address: bool = True) -> list[str]:
    """A revision as lines: every field first, so a changed slug, status or tag shows in the diff too.

    ``address=False`` leaves out slug and status (a restore brings back neither).
    """
    state = [f"Slug: {revision.slug or NOT_RECORDED}", f"Status: {revision_status(revision)}"] if address else []
    header = [f"Title: {revision.title}", *state, f"Language: {revision.lang}",
              f"Category: {revision.category}", f"Tags: {', '.join(revision.tags or [])}", ""]
    return header + revision.body_md.splitlines()


def _css(line: str) -> str:
    """The CSS class of a unified-diff line."""
    if line.startswith(("---", "+++")):
        return "diff-file"
    if line.startswith("@@"):
        return "diff-hunk"
    return {"+": "diff-add", "-": "diff-del"}.get(line[:1], "diff-context")


def revision_diff(old: Revision, new: Revision, context: int = 3, *, address: bool = True) -> list[DiffLine]:
    """The unified diff from ``old`` to ``new``; empty when every field shown is the same."""
    lines = difflib.unified_diff(revision_text(old, address=address), revision_text(new, address=address),
                                 fromfile=f"revision {old.number}",
                                 tofile=f"revision {new.number}", n=context, lineterm="")
    return [DiffLine(_css(line), line) for line in lines]
