"""Knowledge capture: every question a person answers makes kb answer better next time.

Example questions ("also asked as") per article, synonyms agents edit per language, answering an
email from kb's articles, drafting an article from an email, and content gaps. Request-free
(STYLE.md 11): the web pages, the CLI and the mail worker import this package, never the other way.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the capture models (and, as they come, its job handlers)."""
    from kb.capture import models  # noqa: F401  (example questions and synonym sets)
    from kb.capture import answering  # noqa: F401  (registers the "capture.answer" job handler)
