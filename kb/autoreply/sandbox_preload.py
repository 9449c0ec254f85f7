"""What the forkserver loads once before it forks any sandbox child; imported by it, never by kb.

multiprocessing's forkserver can only import modules before it forks, so this module does its
work when imported. Every child then starts with its own code imported and with jieba's Chinese
dictionary loaded (about a second of CPU and 80 MB, shared with the children). The matcher would
otherwise load the dictionary at the first Chinese email in each child, inside that email's time
and memory limits, and the worker starts a new child after every email that went over a limit.
"""

from __future__ import annotations

from kb.autoreply import sandbox_child  # noqa: F401 (the code every child runs)
from kb.autoreply.textproc import load_jieba

try:
    load_jieba()
except Exception:  # noqa: BLE001 - never stop the forkserver: a child then loads it when it needs it
    pass
