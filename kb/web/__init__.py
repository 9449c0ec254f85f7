"""The web app: one factory, each subsystem plugged in with its own ``init_app``."""

from __future__ import annotations

import secrets
from typing import Any, Mapping

from flask import Flask

from kb import capture, db, followup, insights, jobs, recovery, retention, search
from kb.config import ensure_secret_key, load_config
from kb.i18n import check_config as check_languages


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from defaults, the config file, ``KB_`` variables and then ``config``."""
    settings = load_config(config)
    check_languages(settings)  # a language without a catalog stops kb before any database work
    app = Flask(__name__, instance_path=settings["INSTANCE_DIR"])
    app.config.update(settings)
    if app.config.get("TESTING") and not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secrets.token_urlsafe(32)
    app.config["SECRET_KEY"] = ensure_secret_key(app.config)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.config["BASE_URL"].startswith("https://"),
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    db.init_app(app)
    search.init_app(app)
    followup.init_app(app)
    recovery.init_app(app)
    capture.init_app(app)
    insights.init_app(app)
    retention.init_app(app)
    jobs.init_app(app)
    _init_web(app)
    return app


def _init_web(app: Flask) -> None:
    """Security headers, CSRF, error pages and the blueprints of each audience."""
    from kb.web import errors, health, i18n, pagecache, security, templatecode
    from kb.web.agent import bp as agent_bp
    from kb.web.api import bp as api_bp
    from kb.web.media import bp as media_bp
    from kb.web.portal import bp as portal_bp

    security.init_app(app)
    i18n.init_app(app)  # before the blueprints: their rules use its URL converter
    errors.init_app(app)
    pagecache.init_app(app)
    templatecode.init_app(app)
    app.register_blueprint(portal_bp)
    app.register_blueprint(api_bp, url_prefix="/api")
    app.register_blueprint(agent_bp, url_prefix="/agent")
    app.register_blueprint(media_bp)
    app.register_blueprint(health.bp)  # /healthz and /readyz for load balancers
