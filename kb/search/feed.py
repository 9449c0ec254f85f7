"""The index change feed (``index_changes``) as Whoosh hosts follow it, and its daily purge.

A position in the feed is ``(txid, id)``: rows are read in that order, after a host's cursor.
- SQLite: writes are serial (a writer holds the database's write lock from its first write to its
  commit), so id order is commit order; ids are never reused (AUTOINCREMENT); txid is 0.
- PostgreSQL: transactions commit in any order, so ids (a sequence) and txids are given out in
  an order commits do not follow. A follower reads only rows whose txid is below the xmin of the
  statement's own snapshot: every transaction below it has ended (PostgreSQL's documentation:
  "All transaction IDs less than xmin are either committed and visible, or rolled back and dead"),
  and any transaction that writes later gets a larger txid, so no row can ever appear behind a
  cursor. An open writing transaction holds xmin back: the follower waits, it never skips.

Rows are kept INDEX_FEED_DAYS. The purge deletes a prefix of the feed and first turns the newest
row it removes into a MARK (article id 0) that stays: a host that finds a mark past its cursor
missed deleted changes and rebuilds.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Callable, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask

from kb import jobs
from kb.models import IndexChange, utcnow

Position = tuple[int, int]  # (txid, id); txid is 0 on SQLite
START: Position = (0, 0)
MARK = 0  # the article id of the row a purge leaves where it stopped
KIND = "search.feed_purge"
BATCH = 5000  # rows per delete: short transactions, an IN list every database takes
_LISTENERS = itertools.count()


def on_commit_of_changes(sessionmaker: so.sessionmaker, callback: Callable[[], None]) -> list[tuple]:
    """Call ``callback`` after each commit of a session that queued an index change; the (target, name, fn) to remove."""
    flag = f"kb.search.feed.changed.{next(_LISTENERS)}"  # each its own mark: one pops it, the others still see it

    def after_flush(session, _context):
        if any(isinstance(obj, IndexChange) for obj in session.new):
            session.info[flag] = True

    def after_commit(session):
        if session.info.pop(flag, False):
            callback()

    def after_rollback(session):
        session.info.pop(flag, None)

    listeners = [(sessionmaker, "after_flush", after_flush), (sessionmaker, "after_commit", after_commit),
                 (sessionmaker, "after_rollback", after_rollback)]
    for target, name, fn in listeners:
        sa.event.listen(target, name, fn)
    return listeners


def remove_listeners(listeners: list[tuple]) -> None:
    """Remove the (target, name, fn) session events ``on_commit_of_changes`` added."""
    for target, name, fn in listeners:
        if sa.event.contains(target, name, fn):
            sa.event.remove(target, name, fn)


def _postgres(session: so.Session) -> bool:
    """Whether the session talks to PostgreSQL (else SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def _xmin():
    """The xmin of the statement's snapshot: every transaction id below it has ended."""
    return sa.cast(sa.cast(sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot()), sa.Text), sa.BigInteger)


def order(session: so.Session) -> list:
    """The feed's order: (txid, id) on PostgreSQL, id on SQLite."""
    return _order(_postgres(session))


def _order(postgres: bool) -> list:
    """The feed's order on PostgreSQL or SQLite."""
    return [IndexChange.txid, IndexChange.id] if postgres else [IndexChange.id]


def after(session: so.Session, position: Position) -> sa.ColumnElement[bool]:
    """Rows past ``position`` in feed order."""
    if _postgres(session):
        return sa.tuple_(IndexChange.txid, IndexChange.id) > sa.tuple_(sa.literal(position[0]), sa.literal(position[1]))
    return IndexChange.id > position[1]


def settled(session: so.Session) -> sa.ColumnElement[bool]:
    """Rows no later commit can appear before (all visible rows on SQLite; txid below xmin on PostgreSQL)."""
    return _settled(_postgres(session))


def _settled(postgres: bool) -> sa.ColumnElement[bool]:
    """``settled`` on PostgreSQL or SQLite."""
    return IndexChange.txid < _xmin() if postgres else sa.true()


def position_of(row) -> Position:
    """The feed position of a row that has ``txid`` and ``id``."""
    return (int(row.txid or 0), int(row.id))


def read(session: so.Session, position: Position, limit: int) -> list:
    """Up to ``limit`` settled rows (id, article_id, txid, queued_at) past ``position``, in feed order."""
    return session.execute(sa.select(IndexChange.id, IndexChange.article_id, IndexChange.txid, IndexChange.queued_at)
                           .where(after(session, position), settled(session))
                           .order_by(*order(session)).limit(limit)).all()


def head(session: so.Session) -> Position:
    """The position of the newest settled row (START if none): a rebuild's cursor, read before the articles.

    Public pages read it on every view (kb.search.content_version), so the statement is built once
    per database kind and runs on the session's connection, without the ORM's per-statement work.
    """
    row = _head_row(session)
    return position_of(row) if row is not None else START


def head_mark(session: so.Session) -> tuple:
    """The head's position and when its row was queued: it names this database's head, not only its count.

    A database made anew counts its rows from 1 again; the time tells its head from an older
    database's at the same count, so a page kept on disk before (kb.web.pagestore) is never served for it.
    """
    row = _head_row(session)
    return (*START, None) if row is None else (*position_of(row), row.queued_at.isoformat())


def _head_row(session: so.Session):
    """The newest settled row (id, txid, queued_at) or None, on the session's connection."""
    return session.connection().execute(_head_statement(_postgres(session))).first()


@lru_cache(maxsize=2)
def _head_statement(postgres: bool) -> sa.Select:
    """The select of the newest settled row on PostgreSQL or SQLite."""
    return (sa.select(IndexChange.id, IndexChange.txid, IndexChange.queued_at).where(_settled(postgres))
            .order_by(*(column.desc() for column in _order(postgres))).limit(1))


def gap(session: so.Session, position: Position) -> bool:
    """Whether a purge deleted changes past ``position`` (a MARK lies past it): the host must rebuild."""
    return session.scalar(sa.select(IndexChange.id).where(IndexChange.article_id == MARK, after(session, position))
                          .limit(1)) is not None


def oldest_after(session: so.Session, position: Position) -> datetime | None:
    """When the oldest change past ``position`` was queued (settled or not), or None."""
    return session.scalar(sa.select(sa.func.min(IndexChange.queued_at)).where(after(session, position)))


def pending_articles(session: so.Session, position: Position) -> set[int]:
    """Ids of the articles with a change past ``position`` (settled or not)."""
    return set(session.scalars(sa.select(IndexChange.article_id).where(after(session, position),
                                                                       IndexChange.article_id != MARK)))


def purge(session: so.Session, before: datetime, between=None) -> int:
    """Delete the feed's prefix of settled rows queued before ``before``, leaving a MARK; how many went.

    Only a prefix in feed order goes (up to the first row that is younger or not settled), so every
    kept row is newer than every deleted one, and the mark tells late hosts that they must rebuild.
    Commits: the mark first (a crash after it only makes late hosts rebuild), then a batch at a time.
    """
    young = session.execute(sa.select(IndexChange.id, IndexChange.txid).where(
        sa.or_(IndexChange.queued_at >= before, sa.not_(settled(session))))
        .order_by(*order(session)).limit(1)).first()
    query = sa.select(IndexChange.id, IndexChange.txid, IndexChange.article_id).where(settled(session))
    if young is not None:
        query = query.where(sa.not_(after(session, position_of(young))), IndexChange.id != young.id)
    last = session.execute(query.order_by(*(column.desc() for column in order(session))).limit(1)).first()
    if last is None:
        return 0
    if last.article_id != MARK:
        session.execute(sa.update(IndexChange).where(IndexChange.id == last.id).values(article_id=MARK))
        session.commit()
    mark, done = position_of(last), 0
    while True:
        ids = list(session.scalars(sa.select(IndexChange.id).where(sa.not_(after(session, mark)),
                                                                   IndexChange.id != last.id).limit(BATCH)))
        if ids:
            session.execute(sa.delete(IndexChange).where(IndexChange.id.in_(ids)))
            session.commit()
            done += len(ids)
            if between is not None:
                between()
        if len(ids) < BATCH:
            return done


def feed_days(settings: Mapping[str, Any]) -> float:
    """How many days the feed keeps a change."""
    return float(settings["INDEX_FEED_DAYS"])


@jobs.handler(KIND)
def _daily_purge(ctx) -> None:
    """The day's purge of changes older than INDEX_FEED_DAYS (one job a day across all hosts)."""
    purge(ctx.session, utcnow() - timedelta(days=feed_days(ctx.settings)), between=ctx.hold)


def init_app(app: Flask) -> None:
    """Make the purge a daily job of every runner (whichever backend: domain code queues changes always)."""
    jobs.daily(KIND)
