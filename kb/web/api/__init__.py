"""The public JSON API blueprint, mounted at /api (routes and the contract in routes.py)."""

from flask import Blueprint

bp = Blueprint("api", __name__, template_folder="templates")

from kb.web.api import routes  # noqa: E402,F401  (routes register on bp)
