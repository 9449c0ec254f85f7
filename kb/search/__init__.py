"""Search seam (placeholder until the Whoosh implementation lands)."""


def init_app(app):
    """Set up search for the app."""
