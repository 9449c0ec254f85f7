"""Each index segment's vocabulary as a set, for one-edit typo candidates without scanning it.

A Whoosh segment never changes after it is written, so its set is made once (about 0.1 s for
10,000 articles) and kept while the segment is in use; a publish adds a small segment, whose set
is small. Candidates are the word's one-edit variants (deletes, transposes, replaces, inserts
over the letters the vocabulary uses), looked up in the set: a few hundred lookups.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict

MAX_SEGMENTS = 32  # sets kept (a segment id and field each); the oldest go first
ALPHABET_SIZE = 40  # the most used letters of a vocabulary: edits with rarer ones are not tried

_sets: OrderedDict = OrderedDict()
_lock = threading.Lock()


def vocabulary(leaf, fieldname: str) -> tuple[frozenset, str]:
    """(the words of ``fieldname`` in one segment's reader, the letters they mostly use), cached."""
    key = (leaf.segment().segment_id(), fieldname)
    with _lock:
        found = _sets.get(key)
        if found is not None:
            _sets.move_to_end(key)
            return found
    words = frozenset(btext.decode("utf-8") for btext in leaf.lexicon(fieldname))
    letters = Counter(ch for word in words for ch in word)
    found = (words, "".join(ch for ch, _n in letters.most_common(ALPHABET_SIZE)))
    with _lock:
        _sets[key] = found
        while len(_sets) > MAX_SEGMENTS:
            _sets.popitem(last=False)
    return found


def edits(word: str, alphabet: str) -> set[str]:
    """Every string one edit (Damerau-Levenshtein) away from ``word``, over ``alphabet`` and its own letters."""
    letters = set(alphabet) | set(word)
    splits = [(word[:k], word[k:]) for k in range(len(word) + 1)]
    found = {a + b[1:] for a, b in splits if b}
    found |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    found |= {a + ch + b[1:] for a, b in splits if b for ch in letters}
    found |= {a + ch + b for a, b in splits for ch in letters}
    found.discard(word)
    return found
