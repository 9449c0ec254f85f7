"""Service recovery: gestures an agent may offer a customer at once within bounds, approval above them,
and an append-only ledger of every offer, decision, sending and correction.

Request-free (STYLE.md 11): the web pages, the emails and the CLI import this package, never the
other way round.
"""
