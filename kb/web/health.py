"""/healthz and /readyz for load balancers: thin views over kb.hosts.health.

Outside every audience's blueprint, so no language, visit counting or throttling applies; the
answers are JSON, never cached, and carry no secrets (see kb.hosts.health).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from kb.hosts import health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers (no database, no search)."""
    return _no_store(jsonify(status="ok")), 200


@bp.get("/readyz")
def readyz():
    """Readiness: database reachable, migrations current, search answering, index lag under the limit."""
    body, status = health.answer(health.readiness(current_app))
    return _no_store(jsonify(body)), status


def _no_store(response):
    """A health answer is about now: no proxy or browser may keep it."""
    response.headers["Cache-Control"] = "no-store"
    return response
