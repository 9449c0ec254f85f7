"""Query-string parameters of the portal and the API, read one way everywhere.

A parameter may be given once; a number must be a whole number in its range. Anything else is a
400 whose message names the parameter and says what to send, never a silent fallback that shows
other results than the ones asked for.
"""

from __future__ import annotations

from flask import abort, request
from flask_babel import gettext as _

MAX_DIGITS = 9


def arg(name: str) -> str:
    """The parameter ``name`` ("" if absent); 400 if it is given more than once."""
    values = request.args.getlist(name)
    if len(values) > 1:
        abort(400, description=_("Give the %(name)s parameter once, not %(count)d times.", name=name, count=len(values)))
    return values[0] if values else ""


def whole_arg(name: str, default: int, low: int, high: int) -> int:
    """The parameter ``name`` as a whole number from ``low`` to ``high``; ``default`` if absent or empty."""
    raw = arg(name).strip()
    if not raw:
        return default
    # isascii: int() would also take "٣" or "1_000"; the length check keeps huge numbers cheap.
    if raw.isascii() and raw.isdigit() and len(raw) <= MAX_DIGITS and low <= int(raw) <= high:
        return int(raw)
    abort(400, description=_("The %(name)s parameter must be a whole number from %(low)d to %(high)d, not \"%(value)s\".",
                             name=name, low=low, high=high, value=raw[:20]))


def one_of_args(*names: str) -> str:
    """The first of ``names`` that is given (they are synonyms); 400 if more than one is."""
    given = [name for name in names if name in request.args]
    if len(given) > 1:
        abort(400, description=_("Give %(names)s, not both.", names=" or ".join(names)))
    return given[0] if given else names[0]
