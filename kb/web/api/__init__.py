"""The api blueprint (placeholder until its routes land)."""

from flask import Blueprint

bp = Blueprint("api", __name__, template_folder="templates")

from kb.web.api import routes  # noqa: E402,F401  (routes register on bp)
