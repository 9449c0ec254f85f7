"""The agents' editor: login, articles, revisions and agent management under /agent."""

from flask import Blueprint

bp = Blueprint("agent", __name__, template_folder="templates")

from kb.web.agent import routes  # noqa: E402,F401  (routes register on bp)
