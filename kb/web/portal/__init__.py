"""The public portal blueprint: pages for customers (routes in routes.py, templates in templates/portal)."""

from flask import Blueprint

bp = Blueprint("portal", __name__, template_folder="templates")

from kb.web.portal import contact, feedback_links, languages, routes, surveys  # noqa: E402,F401  (they register on bp)
