"""A real gunicorn with poison articles in the database: it starts, serves, searches and survives a kill -9.

Each test builds a database with the poison articles (and their cached HTML removed, as after an
upgrade), removes the index folder so the worker must rebuild it at start, and runs
``gunicorn 'kb.web:create_app()'`` as a subprocess on a free port.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from kb.articles import ArticleDraft, create_article
from kb.db import session_scope
from kb.models import Article
from kb.web import create_app
from tests import polling
from tests.agent_helpers import PASSWORD, make_agent
from tests.conftest import TEST_SECRET, close_app
from tests.poison import NAMED, POISON
from tests.test_rendering import assert_inert

GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Site:
    """A running gunicorn and how to reach and change what it serves."""

    url: str
    proc: subprocess.Popen
    env: dict
    log: Path

    def get(self, path: str, opener=None) -> tuple[int, str]:
        """(status, body) of a GET."""
        return polling.http_get(self.url + path, opener)

    def worker_pids(self) -> list[int]:
        """The arbiter's worker processes."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def app(self):
        """An app on the same database and index (indexer off), for writing as an agent would."""
        return create_app({name.removeprefix("KB_"): value for name, value in self.env.items()} | {"INDEXER": False})


def wait_for(predicate, timeout: float, what: str, site: Site | None = None):
    """Poll until ``predicate()`` is truthy; fail with gunicorn's log if it never is."""
    value = polling.poll(predicate, timeout, gone=lambda: site is not None and site.proc.poll() is not None)
    if value:
        return value
    log = site.log.read_text()[-3000:] if site else ""
    pytest.fail(f"{what} did not happen within {timeout} s\n--- gunicorn log ---\n{log}")


def forget_rendering(app) -> None:
    """Drop every cached rendering, as a database from before the cache (or a new renderer) has."""
    with session_scope(app) as session:
        session.execute(sa.update(Article).values(body_html=None, body_text=None, render_key=None))


@pytest.fixture
def site(tmp_path):
    """gunicorn serving a database full of poison articles, its index folder removed."""
    port = free_port()
    env = {"KB_INSTANCE_DIR": str(tmp_path / "instance"), "KB_DATABASE_URL": f"sqlite:///{tmp_path / 'kb.sqlite3'}",
           "KB_INDEX_DIR": str(tmp_path / "index"), "KB_SECRET_KEY": TEST_SECRET, "KB_STARTER_ARTICLES_DIR": "",
           "KB_INDEXER_POLL_SECONDS": "0.2", "KB_BASE_URL": f"http://127.0.0.1:{port}"}
    app = create_app({name.removeprefix("KB_"): value for name, value in env.items()} | {"INDEXER": False})
    make_agent(app)
    with session_scope(app) as session:
        for name in NAMED:
            create_article(session, ArticleDraft(f"Poison {name}", POISON[name], slug=f"poison-{name}"),
                           status="published")
        create_article(session, ArticleDraft("Rain jacket", "Seams are *taped*."), status="published")
    forget_rendering(app)
    close_app(app)
    shutil.rmtree(tmp_path / "index")
    log = tmp_path / "gunicorn.log"
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")} | env
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(GUNICORN), "-w", "1", "-b", f"127.0.0.1:{port}", "--timeout", "60",
                                 "kb.web:create_app()"], env=clean_env, cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT)
    running = Site(f"http://127.0.0.1:{port}", proc, env, log)
    try:
        wait_for(lambda: running.get("/")[0] == 200, 90, "gunicorn serving the home page", running)
        yield running
    finally:
        polling.end(proc, 20)


def check_poison_pages(site: Site) -> None:
    """Every poison article's page is a 200 with the escaped text, and nothing executable."""
    for name in NAMED:
        status, page = site.get(f"/en/articles/poison-{name}")
        assert status == 200, (name, page[-2000:])
        body = re.split(r'<div class="article-body"[^>]*>', page, maxsplit=1)[1].split('<section class="feedback"', 1)[0]
        assert_inert(body)
        if name != "thematic-breaks":  # that one may render in time on a fast machine
            assert '<div class="render-fallback">' in body, name


def publish_and_find(site: Site, title: str) -> None:
    """Publish an article from another process; the worker's indexer makes it searchable."""
    app = site.app()
    try:
        with session_scope(app) as session:
            create_article(session, ArticleDraft(title, f"{title} keeps you dry."), status="published")
    finally:
        close_app(app)
    query = urllib.parse.quote(title)

    def searchable():
        return any(r["title"] == title for r in json.loads(site.get(f"/api/search?q={query}")[1])["results"])

    wait_for(searchable, 30, f"{title!r} becoming searchable", site)


def agent_opener(site: Site):
    """A cookie-keeping client logged in as the editor."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(site.url + "/agent/login", timeout=30).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"email": "edith@example.com", "password": PASSWORD, "csrf_token": token})
    opener.open(site.url + "/agent/login", data=data.encode(), timeout=30)
    return opener


def test_gunicorn_starts_serves_and_indexes_with_poison_articles(site):
    check_poison_pages(site)
    assert "<em>taped</em>" in site.get("/en/articles/rain-jacket")[1]
    publish_and_find(site, "Storm poncho")
    opener = agent_opener(site)
    listing = site.get("/agent/", opener)[1]
    assert "Shown as plain text" in listing
    article_ids = re.findall(r'href="/agent/articles/(\d+)/edit">Poison', listing)
    assert len(article_ids) == len(NAMED)
    for article_id in article_ids:
        status, page = site.get(f"/agent/articles/{article_id}/edit", opener)
        assert status == 200 and 'id="preview-problem"' in page


def test_gunicorn_worker_killed_with_sigkill_is_replaced_and_serves_again(site):
    [worker] = site.worker_pids()
    app = site.app()
    try:
        forget_rendering(app)  # the new worker must render every poison article again
    finally:
        close_app(app)
    shutil.rmtree(site.env["KB_INDEX_DIR"])  # and rebuild the index at its start
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: site.worker_pids() and site.worker_pids() != [worker], 30, "a new worker", site)
    wait_for(lambda: site.get("/")[0] == 200, 60, "the new worker serving", site)
    assert site.proc.poll() is None
    check_poison_pages(site)
    publish_and_find(site, "Storm poncho")
