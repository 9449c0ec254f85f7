"""Full rebuilds: the published articles read in chunks and indexed by worker processes, in segments.

Whoosh is pure Python, so one process indexes on one core. A rebuild of many articles splits them,
in id order, into one contiguous part per worker process; each worker writes its part as a segment
of the new generation (more than one if its postings outgrow LIMIT_MB, see kb.search.pool), and the
segments go into the index in the same order. Document numbers, and so the order of equal scores,
are those of a one-process build, and every score is the same: Whoosh's BM25F takes its statistics
from the whole index, never from one segment.

The parent reads the articles a chunk at a time (never all at once) and makes their documents,
which keeps rendering and the notes on articles search skips (``index_error``) in one session.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import queue
import traceback
from typing import Callable

import sqlalchemy as sa
import sqlalchemy.orm as so
from whoosh import index as whoosh_index

from kb.children import main_module_hidden
from kb.models import Article
from kb.search.pool import SegmentBuilder
from kb.search.schema import document, examples_by_article, record_failure

log = logging.getLogger(__name__)
CHUNK = 250  # articles read, and handed to a worker, at a time
PARALLEL_FROM = 2000  # fewer articles are indexed in this process: starting workers costs about a second
MAX_WORKERS = 4
LIMIT_MB = 96  # postings a builder buffers before it writes them out as a segment (kb.search.pool)
# Up to this many articles the workers' parts end in one segment, written by the first worker: typo
# corrections scan a multi-segment index's whole vocabulary in Python (a single segment's by automaton).
ONE_SEGMENT_UP_TO = 30_000
# ...and only while their titles and text come to at most this many characters: the first worker holds
# every part's postings at once, about 9 MB of memory per million characters (measured: 10,000 articles of
# 8.8 M characters peaked at 227 MB, of 42.6 M at 544 MB). Past it each worker writes its own
# segments within LIMIT_MB, as after any publish.
ONE_SEGMENT_TEXT = 16_000_000
QUEUED = 2  # chunks waiting for each worker: bounds the parent's memory, keeps the worker busy
Progress = Callable[[int, int], None]


def build(session: so.Session, ix, progress: Progress | None) -> int:
    """Index every published article into the empty index ``ix``; returns how many went in."""
    ids = list(session.scalars(sa.select(Article.id).where(Article.status == "published").order_by(Article.id)))
    examples = examples_by_article(session)  # one query, not one per article
    if progress:
        progress(0, len(ids))
    workers = worker_count(len(ids))
    writer = ix.writer()  # holds the new generation's lock, and commits its table of segments
    try:
        if workers <= 1:
            indexed, segments = _build_here(session, ix, ids, examples, progress)
        else:
            indexed, segments = _build_in_workers(session, ix, ids, examples, progress, workers)
        writer._close_segment()  # the writer's own segment stays empty: the builders wrote theirs
        writer._commit_toc(segments)
        writer._finish()
        return indexed
    except BaseException:
        writer.cancel()
        raise


def worker_count(articles: int) -> int:
    """Worker processes for a rebuild of ``articles``: one per available core (at most MAX_WORKERS), none for few."""
    if articles < PARALLEL_FROM:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_WORKERS, articles // CHUNK))


def text_size(session: so.Session) -> int:
    """Characters of the published articles' titles and text (their Markdown where the text is not cached yet)."""
    length = sa.func.length(Article.title) + sa.func.coalesce(sa.func.length(Article.body_text),
                                                              sa.func.length(Article.body_md), 0)
    return int(session.scalar(sa.select(sa.func.coalesce(sa.func.sum(length), 0))
                              .where(Article.status == "published")) or 0)


def documents(session: so.Session, ids: list[int], examples: dict) -> list[dict]:
    """The index documents of the articles ``ids`` that are still published; failures noted on the article."""
    articles = session.scalars(sa.select(Article).where(Article.id.in_(ids), Article.status == "published")
                               .order_by(Article.id)).all()
    docs = []
    for article in articles:
        try:
            docs.append(document(article, examples.get(article.id, [])))
        except Exception as exc:  # noqa: BLE001 - one bad article must not stop the rebuild
            log.warning("search rebuild: skipping article %s", article.id, exc_info=True)
            record_failure(article, exc, last_try=True)
            continue
        if article.index_error:
            article.index_error = ""
    for article in articles:
        # Changed articles (a note, a fresh rendering) stay for the commit; the rest leave memory.
        if not session.is_modified(article):
            session.expunge(article)
    return docs


def _build_here(session, ix, ids, examples, progress) -> tuple[int, list]:
    """(count, segments) of the whole build in this process, one chunk at a time."""
    builder = SegmentBuilder(ix, LIMIT_MB)
    try:
        indexed = 0
        for start in range(0, len(ids), CHUNK):
            docs = documents(session, ids[start:start + CHUNK], examples)
            builder.add(docs)
            indexed += len(docs)
            if progress:
                progress(min(start + CHUNK, len(ids)), len(ids))
        return indexed, builder.finish()
    except BaseException:
        builder.cancel()
        raise


def _build_in_workers(session, ix, ids, examples, progress, workers: int) -> tuple[int, list]:
    """(count, segments): each worker indexes one contiguous part of ``ids``; their segments in order."""
    size = -(-len(ids) // workers)
    parts = [ids[k * size:(k + 1) * size] for k in range(workers)]
    one_segment = len(ids) <= ONE_SEGMENT_UP_TO and text_size(session) <= ONE_SEGMENT_TEXT
    pool = _Workers(ix.storage.folder, len(parts), one_segment=one_segment)
    try:
        indexed = 0
        # Round robin over the parts, so every worker has work from the start.
        for start in range(0, size, CHUNK):
            for k, part in enumerate(parts):
                if part[start:start + CHUNK]:
                    docs = documents(session, part[start:start + CHUNK], examples)
                    pool.send(k, docs)
                    indexed += len(docs)
            pool.drain(block=False)
            if progress:
                progress(pool.done, len(ids))
        segments = pool.finish(lambda done: progress(done, len(ids)) if progress else None)
        return indexed, segments
    except BaseException:
        pool.kill()
        raise


class _Workers:
    """The worker processes of one build: a bounded inbox each, one outbox for progress and results."""

    def __init__(self, folder: str, count: int, one_segment: bool = False):
        # spawn, not fork: the web server's threads (and their locks) must not be copied into a child.
        context = multiprocessing.get_context("spawn")
        self.outbox = context.Queue()
        self.inboxes = [context.Queue(QUEUED) for _ in range(count)]
        # One segment: the other workers hand their parts to the first, which writes them after its own.
        # (kept on self: a queue collected in the parent is gone before a spawned child opens it)
        self.handoff = handoff = context.Queue() if one_segment and count > 1 else None
        limitmb = math.inf if handoff else LIMIT_MB
        self.processes = [context.Process(target=_work, args=(folder, k, self.inboxes[k], self.outbox, limitmb, handoff,
                                                              count), name=f"kb-reindex-{k}", daemon=True)
                          for k in range(count)]
        self.segments: dict[int, list] = {}  # each worker's segments, in document order
        self.done = 0  # documents the workers have indexed so far
        with main_module_hidden():
            for process in self.processes:
                process.start()

    def send(self, k: int, docs: list[dict] | None) -> None:
        """Hand a chunk of documents to worker ``k``, waiting while its inbox is full."""
        while True:
            try:
                self.inboxes[k].put(docs, timeout=1)
                return
            except queue.Full:
                self.drain(block=False)  # raises if a worker failed
                self._check_alive()

    def drain(self, block: bool) -> None:
        """Read the outbox, waiting up to a second for a first message if ``block``; RuntimeError if a worker failed."""
        while True:
            try:
                kind, k, value = self.outbox.get(timeout=1) if block else self.outbox.get_nowait()
            except queue.Empty:
                if block:
                    self._check_alive()
                return
            block = False
            if kind == "error":
                raise RuntimeError(f"search rebuild worker {k} failed:\n{value}")
            if kind == "segments":
                self.segments[k] = value
            else:
                self.done += value

    def finish(self, progress: Callable[[int], None]) -> list:
        """Tell the workers there is no more; their segments in order once each has written its own."""
        for k in range(len(self.inboxes)):
            self.send(k, None)
        while len(self.segments) < len(self.processes):
            self.drain(block=True)
            progress(self.done)
        for process in self.processes:
            process.join()
        return [segment for k in range(len(self.processes)) for segment in self.segments[k]]

    def _check_alive(self) -> None:
        """RuntimeError if a worker that has not handed back its segment has died."""
        for k, process in enumerate(self.processes):
            if k not in self.segments and not process.is_alive() and self.outbox.empty():
                raise RuntimeError(f"search rebuild worker {k} died (exit code {process.exitcode})")

    def kill(self) -> None:
        """End every worker at once (the build failed or was interrupted)."""
        for process in self.processes:
            if process.is_alive():
                process.kill()
            process.join(5)


def _work(folder: str, k: int, inbox, outbox, limitmb: float, handoff=None, count: int = 1) -> None:
    """A worker process: index the chunks from ``inbox`` into new segments of the index in ``folder``.

    With a ``handoff`` queue the workers but the first hand it their unwritten parts, and the first
    writes one segment of all of them, in worker order.
    """
    try:
        builder = SegmentBuilder(whoosh_index.open_dir(folder), limitmb)
        while (docs := inbox.get()) is not None:
            builder.add(docs)
            outbox.put(("done", k, len(docs)))
        # The segments' files stay; the parent's commit lists them.
        if handoff is None:
            outbox.put(("segments", k, builder.finish()))
        elif k:
            handoff.put((k, builder.part()))
            outbox.put(("segments", k, []))
        else:
            parts = sorted(handoff.get() for _ in range(count - 1))
            outbox.put(("segments", k, builder.finish([part for _k, part in parts if part is not None])))
    except BaseException:  # noqa: BLE001 - the parent must learn why, whatever it was
        outbox.put(("error", k, traceback.format_exc()))


