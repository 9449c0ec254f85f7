"""What a job handler gets: its job, a session, the settings, and ``deliver`` for its one effect."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask

from kb.jobs.models import Job
from kb.models import utcnow

Hook = Callable[[str, Job], None]


class JobContext:
    """One claimed job as its handler sees it. The runner commits when the handler returns."""

    def __init__(self, app: Flask, session: so.Session, job: Job, runner_id: str, hook: Hook | None = None):
        self.app, self.session, self.job, self.runner_id, self.hook = app, session, job, runner_id, hook

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
        self._cas(["running"], message_id=value)
        self.session.commit()
        self.step("prepared")
        return value

    def deliver(self, action: Callable[[], Any]) -> bool:
        """Run the job's one outside effect unless it happened already, and record it at once.

        Returns False when an earlier attempt had delivered it.
        """
        if self.delivered:
            return False
        action()
        self._cas(["running"], state="sent")
        self.session.commit()
        self.step("sent")
        return True

    def _cas(self, states: list[str], **values: Any) -> None:
        """Change the job only while this runner still holds it in one of ``states``."""
        job = self.job
        result = self.session.execute(sa.update(Job).where(
            Job.id == job.id, Job.state.in_(states), Job.claimed_by == self.runner_id
        ).values(updated_at=utcnow(), **values).execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise LostClaim(f"job {job.id} is no longer held by this runner")
        for name, value in values.items():
            setattr(job, name, value)


class LostClaim(RuntimeError):
    """Another runner took the job over (this one outlived its lease)."""
