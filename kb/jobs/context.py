"""What a job handler gets: its job, a session, the settings, and ``deliver`` for its one effect."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask

from kb.jobs.clock import db_now
from kb.jobs.models import HELD_STATES, Job

Hook = Callable[[str, Job], None]
# Lease left (seconds, at most half the lease) that an effect needs: an SMTP conversation's timeout.
EFFECT_MARGIN = 30.0


class LostClaim(RuntimeError):
    """Another runner took the job over (this one outlived its lease), or it was given up meanwhile."""


class JobContext:
    """One claimed job as its handler sees it. The runner commits when the handler returns.

    ``message_id`` and ``deliver`` commit the session (so whatever the handler changed before them
    is saved with the record of the effect, and rolled back if the effect fails); the rest of the
    handler's changes are committed with the job's "done".
    """

    def __init__(self, app: Flask, session: so.Session, job: Job, runner_id: str, hook: Hook | None = None):
        self.app, self.session, self.job, self.runner_id, self.hook = app, session, job, runner_id, hook
        self.claim = (runner_id, job.attempts)  # this runner's claim: any takeover changes the attempts

    @property
    def settings(self) -> Mapping[str, Any]:
        """The app's settings."""
        return self.app.config

    @property
    def payload(self) -> dict[str, Any]:
        """The data the job was scheduled with."""
        return dict(self.job.payload or {})

    @property
    def delivered(self) -> bool:
        """Whether the job's outside effect already happened (a runner died after it)."""
        return self.job.state == "sent"

    def step(self, name: str) -> None:
        """Tell the test hook which step just finished."""
        if self.hook is not None:
            self.hook(name, self.job)

    def message_id(self, make: Callable[[], str]) -> str:
        """The job's email Message-ID: made once, stored, and the same in every later attempt."""
        if self.job.message_id:
            return self.job.message_id
        value = make()
        self._cas(message_id=value)
        self.session.commit()
        self.step("prepared")
        return value

    def deliver(self, action: Callable[[], Any]) -> bool:
        """Run the job's one outside effect unless it happened already, and record it at once.

        Returns False when an earlier attempt had delivered it. Just before the effect the claim
        is checked, without committing, so a runner that was overtaken (it outlived its lease while
        preparing) raises LostClaim instead of sending a second copy, and what the handler changed
        before the effect is committed with the record of it (or rolled back if the effect fails).
        Only a lease nearly over (a slow preparation) is renewed, and so committed, before the effect.
        """
        if self.delivered:
            return False
        self._check_claim()
        action()
        self._cas(state="sent")
        self.session.commit()
        self.step("sent")
        return True

    def hold(self) -> None:
        """LostClaim unless this runner still holds the job; renew a lease nearly over (a long job's batches)."""
        self._check_claim()

    def _check_claim(self) -> None:
        """LostClaim unless this runner still holds the job; a lease nearly over is renewed first."""
        runner_id, attempts = self.claim
        with self.session.no_autoflush:  # a flush now would hold SQLite's write lock during the effect
            row = self.session.execute(sa.select(Job.state, Job.claimed_by, Job.attempts, Job.lease_until)
                                       .where(Job.id == self.job.id)).one_or_none()
            now = db_now(self.session)
        if row is None or row.state not in HELD_STATES or (row.claimed_by, row.attempts) != (runner_id, attempts):
            raise LostClaim(f"job {self.job.id} is no longer held by this runner")
        lease = float(self.settings["JOBS_LEASE_SECONDS"])
        if row.lease_until is None or row.lease_until - now < timedelta(seconds=min(EFFECT_MARGIN, lease / 2)):
            # Too little lease left (a slow preparation, a busy machine): renew it where other
            # runners see it. That commits what the handler prepared, so only when it must.
            self._cas(lease_until=self.lease_end())
            self.session.commit()

    def lease_end(self) -> datetime:
        """When a lease taken now ends, by the database's clock."""
        return db_now(self.session) + timedelta(seconds=float(self.settings["JOBS_LEASE_SECONDS"]))

    def _cas(self, **values: Any) -> None:
        """Change the job only while this runner's claim on it still stands."""
        job = self.job
        runner_id, attempts = self.claim
        result = self.session.execute(sa.update(Job).where(
            Job.id == job.id, Job.state.in_(HELD_STATES), Job.claimed_by == runner_id, Job.attempts == attempts,
        ).values(updated_at=db_now(self.session), **values).execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise LostClaim(f"job {job.id} is no longer held by this runner")
        for name, value in values.items():
            setattr(job, name, value)
