"""Portal routes (placeholder)."""

from kb.web.portal import bp


@bp.get("/")
def home():
    """Home page."""
    return "kb"


@bp.get("/search")
def search():
    """Search page."""
    return "search"
