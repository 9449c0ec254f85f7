"""Closing an app lets all of it go: nothing global keeps an app (and its caches) alive afterwards.

The content clock's session events were never unhooked: SQLAlchemy kept them, and through them
every app a process had made. The test suite, which makes thousands, grew to gigabytes and spent
up to 100 s collecting it all at exit.
"""

from __future__ import annotations

import gc
import weakref

import pytest

from kb.articles import ArticleDraft, create_article
from kb.cli import close_app
from kb.db import session_scope
from kb.web import create_app
from tests.conftest import make_config
from tests.searchbackends import BACKENDS, empty_database


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_closed_app_that_served_and_changed_content_is_collected(request, tmp_path, backend):
    overrides = {"JOBS_RUNNER": True}
    if backend == "postgres":
        url = request.getfixturevalue("search_pg_url")
        empty_database(url)
        overrides |= {"DATABASE_URL": url, "SEARCH_BACKEND": "postgres"}
    app = create_app(make_config(tmp_path, **overrides))
    with session_scope(app) as session:  # a commit that queues an index change: every session event fires
        create_article(session, ArticleDraft(title="Refund a card payment", body_md="Refunds take five days."),
                       status="published")
    client = app.test_client()
    assert client.get("/api/search?q=refund").status_code == 200
    assert client.get("/en/").status_code == 200
    gone = weakref.ref(app)
    close_app(app)
    del app, client, session
    gc.collect()
    assert gone() is None, [type(r).__name__ for r in gc.get_referrers(gone())][:10]
