"""Timed work: "do X once, at or after time T", for every domain of kb (STYLE.md 12).

Jobs are rows (kb/jobs/models.py) that any number of runners, on any number of hosts, claim with
a compare-and-set and a lease. A domain registers a handler per kind and schedules jobs by a key
of its choosing; scheduling the same (kind, key) twice is harmless. The seam is five functions:

- ``handler(kind)`` registers ``fn(ctx: JobContext)`` for a kind of job;
- ``schedule(session, kind, key, run_at=None, payload=None)`` adds a job unless it exists;
- ``cancel(session, kind, key)`` drops a job that has not started;
- ``run_due(app)`` claims and runs the jobs that are due (the runner thread and ``kb jobs`` call it);
- ``daily(kind)`` makes a kind recurring: each running runner schedules the day's job once.

A handler has at most one outside effect (an email or a POST), made through ``ctx.deliver``, which
records it the moment it succeeds: a runner killed before that runs the job again after its lease
(an email keeps its Message-ID, so a copy from the narrow window between the server's "accepted"
and kb's record of it is one that mail programs fold together); a runner killed after it only
finishes the bookkeeping. See the README, "Timed work".
"""

from __future__ import annotations

from kb.jobs.context import JobContext, LostClaim
from kb.jobs.runner import Runner, init_app, run_due
from kb.jobs.scheduling import cancel, daily, handler, schedule

__all__ = ["JobContext", "LostClaim", "Runner", "cancel", "daily", "handler", "init_app", "run_due", "schedule"]
