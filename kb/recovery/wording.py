"""The message an offer pre-fills for the customer: the gesture type's template in their language.

Templates are written by admins, so they are filled by plain replacement of known placeholders
(never ``str.format``, which would let a template reach into Python objects): ``{name}``
(the customer's name), ``{amount}``, ``{currency}``, ``{reference}`` (coupon code or refund
reference), ``{agent}`` and ``{gesture}``. An unknown placeholder is left as written.
"""

from __future__ import annotations

import re
from typing import Mapping

PLACEHOLDERS = ("name", "amount", "currency", "reference", "agent", "gesture")
_FIELD = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def fill(template: str, values: Mapping[str, str]) -> str:
    """The template with each known placeholder replaced by its value (empty when not given)."""
    return _FIELD.sub(lambda match: str(values.get(match.group(1), "")), template or "")


def template_for(templates: Mapping[str, str] | None, default: str, lang: str) -> str:
    """The template in ``lang`` when the gesture type has one, else its default template."""
    return ((templates or {}).get(lang) or "").strip() or default or ""
