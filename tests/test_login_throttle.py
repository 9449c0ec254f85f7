"""Login throttling: wrong passwords lock an account and an address, in the database, for everyone.

Time passes in these tests by moving the stored failure times back (``pass_time``) or by giving
kb.throttle an explicit ``now``: no test sleeps.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from kb import throttle
from kb.db import session_scope
from kb.models import LoginThrottle
from tests.agent_helpers import EDITOR, login, make_agent, post_form

WRONG = "not the password"
LOCKED = "Too many attempts; try again in"


def pass_time(app, minutes: float) -> None:
    """Let ``minutes`` pass for the throttle: every stored failure moves that far into the past."""
    with session_scope(app) as session:
        for row in session.scalars(sa.select(LoginThrottle)):
            row.last_failure_at -= timedelta(minutes=minutes)


def fail(client, times: int, email: str = EDITOR):
    """Type a wrong password ``times`` times; the last response."""
    for _ in range(times):
        response = login(client, email, WRONG)
    return response


def assert_locked(response, minutes: int) -> None:
    """The login page says plainly how long to wait, as a 429 with Retry-After."""
    assert response.status_code == 429, response.status_code
    assert f"{LOCKED} {minutes} minutes." in response.text
    assert 0 < int(response.headers["Retry-After"]) <= minutes * 60


def test_after_five_wrong_passwords_the_right_one_is_refused_until_the_lock_ends(app, client):
    make_agent(app)
    for _ in range(4):
        response = login(client, password=WRONG)
        assert response.status_code == 200 and "Wrong email or password" in response.text
    assert_locked(login(client, password=WRONG), 15)
    assert_locked(login(client), 15)  # the right password, refused without being checked
    assert client.get("/agent/").status_code == 302
    pass_time(app, 10)
    assert_locked(login(client), 5)
    pass_time(app, 5)
    assert login(client).status_code == 302
    assert client.get("/agent/").status_code == 200


def test_the_lock_doubles_with_each_failure_after_it_ends(app, client):
    make_agent(app)
    fail(client, 5)
    pass_time(app, 15)
    assert_locked(fail(client, 1), 30)
    pass_time(app, 30)
    assert_locked(fail(client, 1), 60)


def test_unknown_accounts_are_locked_the_same_way(app, client):
    make_agent(app)
    for email in (EDITOR, "nobody@example.com"):
        other = app.test_client()
        other.environ_base["REMOTE_ADDR"] = f"192.0.2.{len(email)}"
        first = login(other, email, WRONG)
        assert first.status_code == 200 and "Wrong email or password" in first.text
        assert_locked(fail(other, 4, email), 15)


def test_a_right_password_resets_the_count(app, client):
    make_agent(app)
    fail(client, 4)
    assert login(client).status_code == 302
    other = app.test_client()  # same address, and the same account
    assert fail(other, 4).status_code == 200  # four more do not lock: the run was broken


def test_one_address_trying_many_accounts_is_locked(app_factory):
    app = app_factory(LOGIN_MAX_FAILURES_PER_CLIENT=6)
    make_agent(app)
    attacker = app.test_client()
    for n in range(5):
        assert login(attacker, f"guess{n}@example.com", WRONG).status_code == 200
    assert_locked(login(attacker, "guess5@example.com", WRONG), 15)
    assert_locked(login(attacker), 15)  # a real account's right password, from that address
    colleague = app.test_client()
    colleague.environ_base["REMOTE_ADDR"] = "198.51.100.20"
    assert login(colleague).status_code == 302  # from elsewhere the account still works


def test_a_forged_forwarded_for_header_does_not_escape_the_throttle(app_factory):
    app = app_factory(LOGIN_MAX_FAILURES_PER_CLIENT=3)
    make_agent(app)
    attacker = app.test_client()
    for n in range(3):
        login_with = {"HTTP_X_FORWARDED_FOR": f"203.0.113.{n}"}
        attacker.environ_base.update(login_with)
        response = login(attacker, f"guess{n}@example.com", WRONG)
    assert_locked(response, 15)


def test_behind_a_trusted_proxy_each_forwarded_client_counts_apart(app_factory):
    app = app_factory(TRUSTED_PROXIES=1, LOGIN_MAX_FAILURES_PER_CLIENT=3)
    make_agent(app)
    attacker, colleague = app.test_client(), app.test_client()
    attacker.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.9"
    colleague.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.20"
    for n in range(3):
        response = login(attacker, f"guess{n}@example.com", WRONG)
    assert_locked(response, 15)
    assert login(colleague).status_code == 302  # same proxy address, another client


def test_an_admin_setting_a_new_password_lifts_the_lock(app, client):
    make_agent(app)
    make_agent(app, "ada@example.com", role="admin")
    fail(client, 5)
    admin = app.test_client()
    admin.environ_base["REMOTE_ADDR"] = "198.51.100.30"
    assert login(admin, "ada@example.com").status_code == 302
    post_form(admin, "/agent/admin/agents/1/password", {"password": "a-brand-new-one"})
    fresh = app.test_client()
    fresh.environ_base["REMOTE_ADDR"] = "198.51.100.31"
    assert login(fresh, password="a-brand-new-one").status_code == 302


def test_counts_are_shared_by_every_worker_on_the_database(app_factory, shared_db_url, tmp_path):
    first = app_factory(DATABASE_URL=shared_db_url)
    second = app_factory(DATABASE_URL=shared_db_url, INDEX_DIR=str(tmp_path / "index-2"))
    make_agent(first)
    one, two = first.test_client(), second.test_client()
    fail(one, 2)
    fail(two, 2)
    assert_locked(login(one, password=WRONG), 15)  # the fifth failure, counted with the other app's
    assert_locked(login(two), 15)
    pass_time(second, 15)
    assert login(one).status_code == 302


def test_no_email_or_address_is_stored_in_clear(app, client):
    fail(client, 2, "someone@example.com")
    with session_scope(app) as session:
        keys = list(session.scalars(sa.select(LoginThrottle.key)))
    assert len(keys) == 2 and not any("someone" in key or "127.0.0.1" in key for key in keys)


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def test_policy_locks_grow_and_stop_at_a_day():
    policy = throttle.Policy(max_failures=5, max_failures_per_client=20, lock_minutes=15)
    assert policy.lock_after(4, 5) is None
    assert [policy.lock_after(n, 5) for n in (5, 6, 7)] == [timedelta(minutes=m) for m in (15, 30, 60)]
    assert policy.lock_after(500, 5) == timedelta(days=1)


def test_a_counter_is_forgotten_a_day_after_its_last_failure(session):
    policy = throttle.Policy(max_failures=2, max_failures_per_client=99, lock_minutes=15)
    attempt = throttle.counters("secret", "a@example.com", "192.0.2.1", policy)
    throttle.record_failure(session, attempt, policy, NOW)
    assert throttle.record_failure(session, attempt, policy, NOW + timedelta(days=2)) is None  # starts again at 1
    assert throttle.record_failure(session, attempt, policy, NOW + timedelta(days=2)) == timedelta(minutes=15)
    assert throttle.lock_remaining(session, attempt, policy, NOW + timedelta(days=2, minutes=14)) == timedelta(minutes=1)
    assert throttle.lock_remaining(session, attempt, policy, NOW + timedelta(days=2, minutes=15)) is None
