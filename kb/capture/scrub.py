"""Personal data out of customers' words before kb keeps them as knowledge (examples, drafts).

Removed: email addresses, phone numbers, long digit runs (order, card and account numbers) and the
names given to ``scrub``. Each becomes a placeholder a reader understands ("[email]", "[phone]",
"[number]", "[name]"), so an example still reads as a question.
"""

from __future__ import annotations

import re
from typing import Iterable

EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# A phone: an optional +, then 7 or more digits with spaces, dots, dashes or brackets between them.
PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().-]{5,}\d(?!\w)")
LONG_NUMBER = re.compile(r"(?<!\w)[A-Z]{0,4}[-#]?\d{5,}(?!\w)")


def scrub(text: str, names: Iterable[str] = ()) -> str:
    """The text with email addresses, phone numbers, long numbers and the given names replaced."""
    text = EMAIL.sub("[email]", text or "")
    for name in sorted({n.strip() for n in names if n and len(n.strip()) > 1}, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", "[name]", text, flags=re.IGNORECASE)
    text = PHONE.sub(lambda m: "[phone]" if sum(c.isdigit() for c in m.group()) >= 7 else m.group(), text)
    return LONG_NUMBER.sub("[number]", text)
