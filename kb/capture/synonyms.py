"""Synonyms agents edit: sets of words and phrases that mean the same to customers, per language.

Sets are written as one line ("refund, money back, reimburse" for equivalents, "parcel => package,
shipment" for a one-way expansion), in the shipped data files (``synonym_sets/<lang>.txt``, each
line named by a stable key) and in the admin page alike. The files say what a default set holds;
its ``SynonymSet`` row (source "default") only remembers whether agents switched it on or off, so
that choice survives restarts and upgrades. Agents' own sets are rows with source "agent".
Portal search and the matcher read ``active_sets`` and re-read it when ``version`` changes.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.capture.models import SynonymSet
from kb.errors import FieldError, NotFound
from kb.models import utcnow

DATA = Path(__file__).resolve().parent / "synonym_sets"
DEFAULT_LANGS = ("en", "zh", "nb")
MAX_TERM = 80
MAX_TERMS = 20
MAX_SETS_PER_LANG = 2000
ARROW = "=>"
SEPARATORS = re.compile("[,，、;；]")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,60}$")
LANG_RE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class Synonyms:
    """One set as search and the matcher use it: for an expansion, terms[0] finds the rest."""

    lang: str
    kind: str
    terms: tuple[str, ...]

    def sources(self) -> tuple[str, ...]:
        """The terms that bring in others: all of an equivalent set, the first of an expansion."""
        return self.terms if self.kind == "equivalent" else self.terms[:1]

    def targets(self, term: str) -> tuple[str, ...]:
        """The terms a query holding ``term`` also looks for."""
        return tuple(t for t in self.terms if t != term) if term in self.sources() else ()


@dataclass(frozen=True)
class DefaultSet:
    """A set shipped in a data file: its stable key, language, kind and terms."""

    key: str
    lang: str
    kind: str
    terms: tuple[str, ...]


def fold(term: str) -> str:
    """A term as sets compare it: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", term).casefold().split())


def parse_line(line: str) -> tuple[str, list[str]]:
    """(kind, terms) of one set written as a line; FieldError saying what is wrong."""
    text = unicodedata.normalize("NFKC", str(line or ""))
    if any(unicodedata.category(ch)[0] == "C" for ch in text):
        raise FieldError({"terms": "Write the set on one line, without control characters."})
    kind = "expansion" if ARROW in text else "equivalent"
    if text.count(ARROW) > 1:
        raise FieldError({"terms": f"Use {ARROW} once: one term on its left, the terms it also finds on its right."})
    left, _, right = text.partition(ARROW) if kind == "expansion" else (text, "", "")
    heads = _terms(left)
    if kind == "expansion" and len(heads) != 1:
        raise FieldError({"terms": f"Put exactly one term before {ARROW}."})
    terms = heads + _terms(right)
    if len(terms) < 2:
        raise FieldError({"terms": "Write at least two terms, separated by commas."})
    if len(terms) > MAX_TERMS:
        raise FieldError({"terms": f"Keep a set to {MAX_TERMS} terms at most."})
    if len({fold(t) for t in terms}) < len(terms):
        raise FieldError({"terms": "Each term may appear only once in a set."})
    return kind, terms


def _terms(text: str) -> list[str]:
    """The non-empty terms of comma-separated text, whitespace collapsed; FieldError if one is too long."""
    terms = [" ".join(part.split()) for part in SEPARATORS.split(text)]
    for term in terms:
        if len(term) > MAX_TERM:
            raise FieldError({"terms": f"Keep each term under {MAX_TERM} characters."})
        if term and not any(ch.isalnum() for ch in term):
            raise FieldError({"terms": f"“{term}” has no letters or digits."})
    return [t for t in terms if t]


def written(kind: str, terms: list[str] | tuple[str, ...]) -> str:
    """A set as one line, the way the files and the admin form write it."""
    if kind == "expansion":
        return f"{terms[0]} {ARROW} {', '.join(terms[1:])}"
    return ", ".join(terms)


_file_cache: dict[Path, tuple[float, list[DefaultSet]]] = {}


def read_defaults(lang: str, folder: Path | None = None) -> list[DefaultSet]:
    """The default sets shipped for ``lang`` (none if kb ships no file); re-read when the file changes."""
    path = (folder or DATA) / f"{lang}.txt"
    if not LANG_RE.match(lang) or not path.is_file():
        return []
    mtime = path.stat().st_mtime
    cached = _file_cache.get(path)
    if cached is None or cached[0] != mtime:
        cached = _file_cache[path] = (mtime, _parse_file(path, lang))
    return cached[1]


def _parse_file(path: Path, lang: str) -> list[DefaultSet]:
    """The sets of one data file; ValueError naming the line for a broken one (a packaging bug)."""
    found, keys = [], set()
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, rest = line.partition(":")
        key = key.strip()
        try:
            if not KEY_RE.match(key) or key in keys:
                raise FieldError({"key": "a unique key of a-z, 0-9 and -, then a colon"})
            kind, terms = parse_line(rest)
        except FieldError as exc:
            raise ValueError(f"{path}:{number}: {'; '.join(exc.errors.values())}") from exc
        keys.add(key)
        found.append(DefaultSet(f"{lang}:{key}", lang, kind, tuple(terms)))
    return found


def all_defaults() -> list[DefaultSet]:
    """The default sets of every language kb ships a file for."""
    return [d for lang in DEFAULT_LANGS for d in read_defaults(lang)]


def load_defaults(session: so.Session) -> int:
    """Give every shipped default set its row (terms kept in step with the file; ``active`` left
    as agents set it); rows of defaults no longer shipped go. Idempotent; returns rows changed.
    The caller commits."""
    shipped = {d.key: d for d in all_defaults()}
    rows = {r.default_key: r for r in session.scalars(sa.select(SynonymSet).where(SynonymSet.source == "default"))}
    changed = 0
    for key, row in rows.items():
        if key not in shipped:
            session.delete(row)
            changed += 1
    for key, default in shipped.items():
        row = rows.get(key)
        if row is None:
            changed += _insert_default(session, default)
        elif row.kind != default.kind or list(row.terms) != list(default.terms) or row.lang != default.lang:
            row.kind, row.terms, row.lang, row.updated_at = default.kind, list(default.terms), default.lang, utcnow()
            changed += 1
    session.flush()
    return changed


def _insert_default(session: so.Session, default: DefaultSet) -> int:
    """Insert a default's row; 0 if another process inserted it first (the unique key keeps one)."""
    with session.begin_nested():
        session.add(SynonymSet(lang=default.lang, kind=default.kind, terms=list(default.terms), source="default",
                               default_key=default.key, active=True))
        try:
            session.flush()
        except sa.exc.IntegrityError:
            return 0
    return 1


def list_sets(session: so.Session, lang: str) -> list[SynonymSet]:
    """The sets of one language: agents' own first (newest first), then the defaults in file order."""
    rows = list(session.scalars(sa.select(SynonymSet).where(SynonymSet.lang == lang)))
    order = {d.key: n for n, d in enumerate(read_defaults(lang))}
    own = sorted((r for r in rows if r.source == "agent"), key=lambda r: -r.id)
    defaults = sorted((r for r in rows if r.source == "default"), key=lambda r: order.get(r.default_key, len(order)))
    return own + defaults


def get_set(session: so.Session, set_id: int) -> SynonymSet:
    """One set by id; NotFound if there is none."""
    row = session.get(SynonymSet, set_id)
    if row is None:
        raise NotFound("No such synonym set.")
    return row


def check_lang(lang: str) -> str:
    """A language code for sets ("en", "zh", "nb"...); FieldError for anything else."""
    lang = str(lang or "").strip().lower()
    if lang in ("no", "nn"):
        lang = "nb"
    if not LANG_RE.match(lang):
        raise FieldError({"lang": "Choose a language such as en, zh or nb."})
    return lang


def add_set(session: so.Session, lang: str, line: str) -> SynonymSet:
    """Add an agent's set written as one line; FieldError for a bad line or a set that exists."""
    lang = check_lang(lang)
    kind, terms = parse_line(line)
    _refuse_duplicate(session, lang, kind, terms)
    if session.scalar(sa.select(sa.func.count()).where(SynonymSet.lang == lang)) >= MAX_SETS_PER_LANG:
        raise FieldError({"terms": f"A language can hold {MAX_SETS_PER_LANG:,} sets at most."})
    row = SynonymSet(lang=lang, kind=kind, terms=terms, source="agent", active=True)
    session.add(row)
    session.flush()
    return row


def update_set(session: so.Session, set_id: int, line: str) -> SynonymSet:
    """Rewrite an agent's set; a default set is switched off or on, never edited (its file says what it holds)."""
    row = get_set(session, set_id)
    if row.source != "agent":
        raise FieldError({"terms": "A default set cannot be edited: switch it off and add your own."})
    kind, terms = parse_line(line)
    _refuse_duplicate(session, row.lang, kind, terms, but=row.id)
    row.kind, row.terms, row.updated_at = kind, terms, utcnow()
    session.flush()
    return row


def remove_set(session: so.Session, set_id: int) -> SynonymSet:
    """Delete an agent's set; a default set can only be switched off (so an upgrade does not bring it back)."""
    row = get_set(session, set_id)
    if row.source != "agent":
        raise FieldError({"terms": "A default set cannot be removed: switch it off instead."})
    session.delete(row)
    session.flush()
    return row


def set_active(session: so.Session, set_id: int, active: bool) -> SynonymSet:
    """Switch a set (default or agent's) on or off."""
    row = get_set(session, set_id)
    row.active, row.updated_at = bool(active), utcnow()
    session.flush()
    return row


def _refuse_duplicate(session: so.Session, lang: str, kind: str, terms: list[str], but: int | None = None) -> None:
    """FieldError if the language already has a set of this kind with the same terms."""
    wanted = _signature(kind, terms)
    for row in session.scalars(sa.select(SynonymSet).where(SynonymSet.lang == lang, SynonymSet.kind == kind)):
        if row.id != but and _signature(row.kind, row.terms) == wanted:
            raise FieldError({"terms": "This language already has that set."})


def _signature(kind: str, terms) -> tuple:
    """What makes two sets the same: the source term of an expansion, and the folded terms."""
    folded = [fold(t) for t in terms]
    return (folded[0], frozenset(folded[1:])) if kind == "expansion" else (frozenset(folded),)


def active_sets(session: so.Session) -> list[Synonyms]:
    """Every set search and the matcher apply: shipped defaults not switched off, and agents' active sets."""
    rows = list(session.scalars(sa.select(SynonymSet).order_by(SynonymSet.id)))
    switched = {r.default_key: r.active for r in rows if r.source == "default"}
    found = [Synonyms(d.lang, d.kind, d.terms) for d in all_defaults() if switched.get(d.key, True)]
    found += [Synonyms(r.lang, r.kind, tuple(r.terms)) for r in rows
              if r.source == "agent" and r.active and len(r.terms or ()) >= 2]
    return found


def version(session: so.Session) -> str:
    """Changes whenever the sets in force may have: rows added, removed, edited or switched, or a new data file."""
    count, top, changed, on = session.execute(sa.select(
        sa.func.count(), sa.func.max(SynonymSet.id), sa.func.max(SynonymSet.updated_at),
        sa.func.count().filter(SynonymSet.active.is_(True)))).one()
    return f"{count}:{top or 0}:{changed}:{on}:{_files_digest()}"


def _files_digest() -> str:
    """A short digest of the shipped data files' contents (cached per file change)."""
    digest = hashlib.sha256()
    for d in all_defaults():
        digest.update(repr((d.key, d.kind, d.terms)).encode())
    return digest.hexdigest()[:12]
