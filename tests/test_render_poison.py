"""Rendering never raises and never takes long: poison Markdown falls back to escaped text with a notice."""

from __future__ import annotations

import html
import os
import signal
import sys
import time

import pytest

from kb.render_limits import MAX_BODY_CHARS
from kb.render_sandbox import POOL
from kb.rendering import BUSY, TOO_SLOW, plain_text, prerender, render, render_markdown
from tests.poison import POISON
from tests.test_rendering import assert_inert


def timed(fn, *args):
    """(result, seconds) of one call."""
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


@pytest.mark.parametrize("name", list(POISON))
def test_rendering_poison_never_raises_and_takes_under_two_seconds(name):
    text = POISON[name]
    render_markdown("warm *up*")  # the renderer process of this test process is running (not timed)
    body_html, seconds = timed(render_markdown, text)
    assert seconds < 2, f"{name} took {seconds:.1f} s"
    assert_inert(body_html)
    assert isinstance(plain_text(text), str)


@pytest.mark.parametrize("name", list(POISON))
def test_poison_is_shown_as_escaped_text_with_advice_for_the_agent(name):
    text = POISON[name]
    rendered = render(text)
    assert_inert(rendered.html)
    if rendered.problem:  # on a fast machine some of the slow shapes render in time, and that is fine
        assert rendered.html.startswith('<div class="render-fallback"><p>')
        assert html.escape(text.strip().split("\n")[0][:60]) in rendered.html
        assert rendered.text.split()[:3] == text.split()[:3]
        assert len(rendered.problem) > 40 and rendered.problem.endswith((".", ")."))


@pytest.mark.parametrize("name, advice", [
    ("emphasis-stars-4kb", "Line 1 opens more than 200 '*' or '_'"),
    ("list-nested-300", "Line 101 is nested 101 levels deep"),
    ("quotes-spaced-one-line", "Line 1 is nested"),
    ("brackets-15kb", "Line 1 opens more than 100 '['"),
    ("html-div-500kb", "<div> opened and never closed"),
])
def test_the_notice_names_the_line_and_what_to_change(name, advice):
    rendered = render(POISON[name])
    assert advice in rendered.problem and rendered.final


def test_fallback_escapes_markup_instead_of_rendering_it():
    attack = '<script>alert(1)</script> <img src=x onerror="alert(2)"> <a href="javascript:alert(3)">x</a>'
    rendered = render(POISON["emphasis-stars-4kb"] + "\n\n" + attack)
    assert rendered.problem
    assert_inert(rendered.html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "onerror=&quot;alert(2)&quot;" in rendered.html and "<img" not in rendered.html


def test_time_limit_stops_a_render_no_shape_check_knows_and_the_next_render_works():
    render("warm up")
    rendered, seconds = timed(render, POISON["thematic-breaks"])
    assert seconds < 2
    assert rendered.problem in (TOO_SLOW, BUSY)
    assert rendered.final == (rendered.problem == TOO_SLOW)
    assert render("*fine*").html == "<p><em>fine</em></p>"


def test_body_over_the_size_limit_is_not_rendered():
    rendered = render("# Big\n\n" + "a" * MAX_BODY_CHARS)
    assert "at most 500,000" in rendered.problem and "<h1" not in rendered.html
    assert len(rendered.html) < MAX_BODY_CHARS + 100


def test_nul_and_unpaired_surrogates_render():
    rendered = render("a\x00b *c* \ud800 d")
    assert rendered.problem == "" and "<em>c</em>" in rendered.html
    assert "\x00" not in rendered.html and "\ud800" not in rendered.html


def test_ordinary_nesting_and_code_are_not_refused():
    body = "\n".join([
        "".join("    " * i + f"- level {i}\n" for i in range(20)),
        "> " * 10 + "a quote ten deep",
        "",
        "*" * 80,  # a thematic break, not emphasis
        "",
        "```python",
        "grid = " + "[" * 300 + "]" * 300,
        "Map<String, List<Integer>> x; " * 150,
        "```",
        "",
        "Inline `" + "[" * 150 + "` and `List<T>` " * 5,
        "",
        "| name | price |\n|---|---|\n" + "| **bold** *it* | 1 |\n" * 500,
        "<div><p>Some <b>HTML</b></p></div>",
    ])
    rendered = render(body)
    assert rendered.problem == ""
    assert "<ul>" in rendered.html and "<table>" in rendered.html and "<pre>" in rendered.html


def test_prerendered_texts_are_not_rendered_again():
    texts = [f"Article *{n}*" for n in range(5)]
    prerender(texts)
    rendered = [render(text) for text in texts]
    assert [r.html for r in rendered] == [f"<p>Article <em>{n}</em></p>" for n in range(5)]
    assert all(render(text) is r for text, r in zip(texts, rendered))  # kept, not made again


def test_a_renderer_process_killed_from_outside_is_replaced():
    render("warm *up*")
    for child in list(POOL._idle):  # what the OOM killer or an operator's kill -9 would do
        os.kill(child.proc.pid, signal.SIGKILL)
        child.proc.wait()
    assert render("*still* fine").html == "<p><em>still</em> fine</p>"


def test_without_a_renderer_process_kb_renders_in_process_and_keeps_the_shape_limits(monkeypatch):
    POOL.close()  # no idle renderer left, and none can start:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    rendered = render("*in process* 4f1c")
    assert rendered.html == "<p><em>in process</em> 4f1c</p>" and not rendered.final  # made again later
    poison = render(POISON["list-nested-300"] + "\n<!-- 4f1c -->")
    assert "Line 101 is nested" in poison.problem and not poison.final
