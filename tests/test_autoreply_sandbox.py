"""The sandbox around one email's processing, and the quick look at the raw headers before it."""

from __future__ import annotations

import os
import threading
import time

import pytest

from kb.autoreply.matcher import MatchArticle, Matcher
from kb.autoreply.parsing import parse_message
from kb.autoreply.processing import PEEK_VALUE_CHARS, peek
from kb.autoreply.sandbox import Limits, Sandbox
from tests import misbehaving
from tests.test_autoreply_worker import make_email


@pytest.fixture
def sandboxes():
    """Make sandboxes (one second, 100 MB unless told); all are closed at the end."""
    made = []

    def make(function=misbehaving.process_message, seconds=1.0, memory_mb=100):
        sandbox = Sandbox(Limits(seconds, memory_mb << 20), threading.Event(), function=function)
        made.append(sandbox)
        return sandbox

    yield make
    for sandbox in made:
        sandbox.close()


def run(sandbox, raw: bytes, matcher: Matcher | None = None, sent=()):
    """Process ``raw`` in ``sandbox``; ``sent`` are the Message-IDs kb "sent"."""
    return sandbox.run(raw, matcher=matcher or Matcher(), settings={"BASE_URL": "https://help.kb.example"},
                       lookup=lambda message_id: message_id in sent)


def pid_of(outcome) -> int:
    """The child's process id, from tests.misbehaving.which_process."""
    return int(outcome.decision.reason.split()[-1])


def alive(pid: int) -> bool:
    """True while the process exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_emails_are_decided_in_one_reused_child_with_the_matcher_it_is_given(sandboxes):
    sandbox = sandboxes()
    question = make_email(subject="Snowshoe rental", body="Can I rent snowshoes for the weekend?")
    assert run(sandbox, question).decision.reason.startswith("no-match")
    matcher = Matcher.from_articles([MatchArticle("7", "Renting snowshoes", "Rent snowshoes for a weekend.", "en"),
                                     MatchArticle("8", "Returns", "Send it back within 30 days.", "en")])
    outcome = run(sandbox, question, matcher)
    assert outcome.decision.reply and outcome.decision.matches[0].article_id == "7"
    assert outcome.decision.email.subject == "Snowshoe rental" and 0 < outcome.seconds < 1
    counting = sandboxes(function=misbehaving.which_process)
    first, second = run(counting, question), run(counting, question)
    assert pid_of(first) == pid_of(second) != os.getpid()


def test_the_child_asks_the_worker_whether_kb_sent_a_message_id(sandboxes):
    reply = make_email(subject="Re: parcel", In_Reply_To="<r1@old-host.example>")
    outcome = run(sandboxes(), reply, sent={"<r1@old-host.example>"})
    assert outcome.decision.reason.startswith("reply-to-our-reply")
    assert not run(sandboxes(), reply).decision.reason.startswith("reply-to-our-reply")


@pytest.mark.parametrize("kind, amount, reason", [
    ("slow", 60, "too-slow: processing did not finish within 1 s"),
    ("huge", 400, "too-big: processing needed more than 100 MB"),
    ("crash", None, "error: processing stopped: the process died (SIGSEGV)"),
])
def test_an_email_over_a_limit_is_stopped_and_the_next_one_gets_a_fresh_child(sandboxes, kind, amount, reason):
    sandbox = sandboxes(function=misbehaving.which_process)
    before = pid_of(run(sandbox, make_email()))
    started = time.monotonic()
    outcome = run(sandbox, make_email(X_Kb_Test=misbehaving.header(kind, amount)))
    assert outcome.decision is None and outcome.problem.startswith(reason)
    assert time.monotonic() - started < 10  # the slow one asked for a minute
    assert not alive(before)
    assert pid_of(run(sandbox, make_email())) != before


def test_a_normal_email_reports_its_time_and_peak_memory(sandboxes):
    outcome = run(sandboxes(), make_email(body="How do I reset my password? " * 20_000))
    assert outcome.decision is not None and outcome.seconds > 0 and outcome.peak_bytes > 0


def test_a_new_child_starts_with_the_chinese_dictionary_loaded(sandboxes):
    """jieba's dictionary costs about a second of CPU and 80 MB: loaded lazily, it counted against
    the first Chinese email of every child (a new one after each email over a limit), and on a busy
    machine made a plain question "too-slow". The forkserver loads it once for all children."""
    assert run(sandboxes(function=misbehaving.jieba_state), make_email()).decision.reason == "jieba loaded"
    matcher = Matcher.from_articles([MatchArticle("1", "如何申请退款？", "退款会在五个工作日内退回原支付方式。", "zh"),
                                     MatchArticle("2", "Returns", "Send it back within 30 days.", "en")])
    outcome = run(sandboxes(seconds=30, memory_mb=200), make_email(subject="如何申请退款？", body="我想申请退款，怎么办？"), matcher)
    assert outcome.decision.matches[0].article_id == "1"
    assert outcome.peak_bytes < 40 << 20  # loading the dictionary here took 80 MB


def test_kill_ends_a_slow_email_at_once_as_interrupted(sandboxes):
    sandbox = sandboxes(seconds=120)

    def stop():
        sandbox.stop.set()
        sandbox.kill()

    threading.Timer(1.0, stop).start()
    started = time.monotonic()
    outcome = run(sandbox, make_email(X_Kb_Test=misbehaving.header("slow", 300)))
    assert outcome.interrupted and outcome.decision is None
    assert time.monotonic() - started < 5


def test_close_leaves_no_process_behind(sandboxes):
    sandbox = sandboxes(function=misbehaving.which_process)
    pid = pid_of(run(sandbox, make_email()))
    sandbox.close()
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


@pytest.mark.parametrize("raw", [
    make_email(message_id="<plain@customer.example>"),
    b"Message-ID:\r\n <folded@customer.example>\r\nFrom: a@customer.example\r\nSubject: x\r\n\r\nbody\r\n",
    b"From: a@customer.example\nMessage-Id: <lf-only@x> (comment)\nMessage-ID: <second@x>\n\nbody\n",
    b"From: a@customer.example\r\nSubject: no id\r\n\r\nbody\r\n",
])
def test_the_quick_look_finds_the_message_id_the_parser_finds(raw):
    assert peek(raw).message_id == parse_message(raw).message_id


def test_the_quick_look_decodes_the_subject_and_picks_the_address():
    found = peek("From: Jürgen <jurgen@customer.example>\r\nReply-To: =?utf-8?q?J=C3=BC?= <j@x.example>\r\n"
                 "Subject: =?utf-8?q?R=C3=BCckgabe?= bitte\r\n\r\nbody".encode())
    assert (found.from_addr, found.reply_to, found.subject) == ("jurgen@customer.example", "j@x.example",
                                                                 "Rückgabe bitte")


def test_the_quick_look_is_bounded_whatever_the_headers_hold():
    folded = b"X-Folded: start\r\n" + b" more\r\n" * 200_000
    subject = b"Subject: " + b" ".join([b"=?utf-8?q?w=C3=B6rd?="] * 20_000) + b"\r\n"
    raw = subject + folded + b"Message-ID: <late@x>\r\nFrom: " + b"a" * 100_000 + b"@x\r\n\r\nbody"
    started = time.monotonic()
    found = peek(raw)
    assert time.monotonic() - started < 1  # the "about a second" for a whole email
    assert len(found.subject) <= PEEK_VALUE_CHARS and len(found.from_addr) <= PEEK_VALUE_CHARS
    assert found.message_id == ""  # past the bytes the quick look reads: the key is a hash of the email
