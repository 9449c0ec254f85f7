"""Compile gettext catalogs (.po to .mo) with Babel, and say what a catalog lacks.

Imports nothing from kb, only Babel and the standard library: setup.py loads this file by its
path to compile the catalogs at install time, before kb's own dependencies exist.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "messages"


def po_files(directory: Path) -> dict[str, Path]:
    """Language code -> its ``<code>/LC_MESSAGES/messages.po`` under ``directory``."""
    return {po.parent.parent.name: po for po in sorted(Path(directory).glob(f"*/LC_MESSAGES/{DOMAIN}.po"))}


def read_catalog(po: Path):
    """The parsed catalog of one .po file (babel.messages.Catalog); raises on a malformed file."""
    with open(po, "rb") as fh:
        return read_po(fh, locale=po.parent.parent.name, abort_invalid=True)


def catalog_problems(po: Path) -> list[str]:
    """What keeps a .po from being complete: fuzzy or untranslated entries, broken placeholders."""
    catalog = read_catalog(po)
    problems = [f"{po}: {msg}" for _message, errors in catalog.check() for msg in map(str, errors)]
    for message in catalog:
        if not message.id:
            continue  # the header
        name = message.id[0] if isinstance(message.id, tuple) else message.id
        if message.fuzzy:
            problems.append(f"{po}: fuzzy (needs review): {name!r}")
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            problems.append(f"{po}: not translated: {name!r}")
    return problems


def mo_bytes(po: Path) -> bytes:
    """The compiled form of one .po file."""
    out = io.BytesIO()
    write_mo(out, read_catalog(po), use_fuzzy=False)  # a fuzzy guess never reaches a customer
    return out.getvalue()


def compile_po(po: Path, mo: Path | None = None) -> Path:
    """Compile one .po into its .mo (beside it unless ``mo`` is given), atomically."""
    mo = Path(mo or po.with_suffix(".mo"))
    data = mo_bytes(po)
    mo.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=mo.parent, prefix=".messages-", suffix=".mo")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, mo)  # readers see the old file or the new one, never half of one
    except BaseException:
        os.unlink(tmp)
        raise
    return mo


def is_stale(po: Path) -> bool:
    """Whether the .mo beside ``po`` is missing or differs from what the .po compiles to.

    Content, not modification times: installing a wheel gives both files the install's time,
    in no useful order.
    """
    mo = po.with_suffix(".mo")
    return not mo.exists() or mo.read_bytes() != mo_bytes(po)


def compile_all(source: Path, target: Path | None = None) -> list[Path]:
    """Compile every catalog under ``source`` into the same layout under ``target`` (or beside)."""
    target = Path(target or source)
    return [compile_po(po, target / po.relative_to(source).with_suffix(".mo")) for po in po_files(source).values()]
