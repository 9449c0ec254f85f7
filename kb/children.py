"""Starting child processes with multiprocessing without paying for the parent's main script."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def main_module_hidden() -> Iterator[None]:
    """Start children without multiprocessing re-running the parent's ``__main__`` script in each.

    multiprocessing runs the parent's main script again in every spawned child (to find functions
    defined there). kb's children run only kb code, so that costs ~1-1.7 s per child for the ``kb``
    console script or a benchmark, and would run an unguarded script's whole body. The child learns
    of the script from ``__main__.__spec__``/``__file__`` at the moment of start(), so they are
    hidden for that moment.
    """
    main = sys.modules["__main__"]
    saved = {name: main.__dict__[name] for name in ("__spec__", "__file__") if name in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)
        if "__spec__" not in saved:
            del main.__spec__
