"""Several kb hosts on one database, for the multi-host tests (tests/test_multihost.py).

A ``Host`` is what one machine behind a load balancer runs, as real subprocesses:
``gunicorn -w 2 'kb.web:create_app()'`` (each worker with its Whoosh indexer thread) and the
worker processes ``kb jobs run`` and ``kb autoreply``. Every host has its own instance folder,
index folder, port and HOST_NAME; all share DATABASE_URL, SECRET_KEY and BASE_URL (the public
address in front of them). Each process logs to a file in the host's folder; a failed wait shows
the end of every log. An ``Editor`` is an agent using one host's editor over HTTP.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests import polling
from tests.conftest import csrf_token_from
from tests.servers import free_port

GUNICORN = Path(sys.executable).with_name("gunicorn")
KB = (sys.executable, "-m", "kb")
PROGRAMS = {
    "web": lambda host: (str(GUNICORN), "-w", "2", "-b", f"127.0.0.1:{host.port}", "--timeout", "60",
                         "--graceful-timeout", "10", "--control-socket", str(host.folder / "gunicorn.ctl"),
                         "kb.web:create_app()"),  # each "machine" its own control socket
    "jobs": lambda host: (*KB, "jobs", "run"),
    "autoreply": lambda host: (*KB, "autoreply"),
}
STOP_SECONDS = 20


class Host:
    """One "machine": its settings, its processes and how to reach its app server."""

    def __init__(self, name: str, folder: Path, shared: dict[str, str], *, index_dir: Path | None = None,
                 programs: tuple[str, ...] = ("web", "jobs", "autoreply")) -> None:
        self.name, self.folder, self.programs = name, folder, programs
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.env = {**shared, "KB_HOST_NAME": name, "KB_INSTANCE_DIR": str(folder / "instance"),
                    "KB_INDEX_DIR": str(index_dir or folder / "index")}
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        """This host's own address (not the shared BASE_URL)."""
        return f"http://127.0.0.1:{self.port}"

    def process_env(self) -> dict[str, str]:
        """The environment of this host's processes: ours, without the caller's KB_ variables."""
        return {k: v for k, v in os.environ.items() if not k.startswith("KB_")} | self.env

    def log(self, program: str) -> Path:
        """The log file of one of this host's programs (appended to across restarts)."""
        return self.folder / f"{program}.log"

    def command(self, *args: str, stdin: str | None = None) -> str:
        """Run ``kb ARGS`` with this host's settings; its output, or fail the test with it."""
        done = subprocess.run([*KB, *args], env=self.process_env(), cwd=self.folder, input=stdin,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            pytest.fail(f"kb {' '.join(args)} on host {self.name} failed ({done.returncode}):\n"
                        f"{done.stdout}{done.stderr}")
        return done.stdout

    def start(self, *, wait: bool = True) -> None:
        """Start every program; with ``wait``, return once the app server answers."""
        for program in self.programs:
            with open(self.log(program), "ab") as out:
                self.procs[program] = subprocess.Popen(PROGRAMS[program](self), env=self.process_env(),
                                                       cwd=self.folder, stdout=out, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait until /readyz says 200, as a load balancer would before sending traffic (index built and caught up)."""
        if "web" in self.programs:
            # Not just any answer: a host still building its index answers, but late (kb.hosts.health).
            self.wait_for(lambda: self.get("/readyz")[0] == 200, timeout, "/readyz answering 200", poll=0.1)

    def terminate(self) -> None:
        """SIGTERM every program, as systemd would (``stop`` then waits for them)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM every program, SIGKILL what has not ended after STOP_SECONDS."""
        self.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = {}

    def dead(self) -> list[str]:
        """The programs that were started and have ended."""
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def logs(self, chars: int = 3000) -> str:
        """The end of every log of this host, for failure messages."""
        parts = []
        for program in self.programs:
            path = self.log(program)
            lines = path.read_text(errors="replace").splitlines() if path.exists() else ["(no log)"]
            # alembic's start-up chatter (every command checks the migrations) would fill the tail
            text = "\n".join(line for line in lines if " alembic" not in line and "DDL." not in line
                              and "Context impl" not in line)[-chars:]
            parts.append(f"--- host {self.name}: {program} ---\n{text}")
        return "\n".join(parts)

    def wait_for(self, predicate, timeout: float, what: str, poll: float = 0.05):
        """Poll ``predicate`` until truthy; fail with this host's logs if it never is or a program died."""
        value = polling.poll(predicate, timeout, poll, gone=lambda: bool(self.dead()))
        if value:
            return value
        if self.dead():
            pytest.fail(f"host {self.name}: {', '.join(self.dead())} ended while waiting for {what}\n{self.logs()}")
        pytest.fail(f"host {self.name}: {what} did not happen within {timeout} s\n{self.logs()}")

    def get(self, path: str, opener=None) -> tuple[int, str]:
        """(status, body) of a GET to this host."""
        return polling.http_get(self.url + path, opener)

    def search(self, q: str, **params) -> dict:
        """The public API's answer to /api/search (fails the test on anything but a 200)."""
        status, body = self.get("/api/search?" + urllib.parse.urlencode({"q": q, **params}))
        if status != 200:
            pytest.fail(f"host {self.name}: /api/search answered {status}: {body[:500]}")
        return json.loads(body)

    def found_slugs(self, q: str) -> tuple[set[str], int]:
        """Every slug the API finds for ``q``, paging through; and the total it reported first."""
        first = self.search(q, per_page=50)
        slugs = [r["slug"] for r in first["results"]]
        for page in range(2, first["pages"] + 1):
            slugs += [r["slug"] for r in self.search(q, per_page=50, page=page)["results"]]
        return set(slugs), first["total"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand redirects back to the caller: the Location after a save names the article."""

    def redirect_request(self, *args, **kwargs):
        return None


class Editor:
    """An agent logged in to one host's editor over real HTTP (a cookie jar and the forms' CSRF tokens)."""

    def __init__(self, host: Host, email: str, password: str) -> None:
        self.host = host
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                                  _NoRedirect)
        token = csrf_token_from(self._get("/agent/login"))
        status, location = self._post("/agent/login", {"email": email, "password": password, "csrf_token": token})
        assert status == 302 and "/agent/login" not in location, f"login on host {host.name} failed: {status}"
        self.token = csrf_token_from(self._get("/agent/articles/new"))  # one token serves the whole session

    def _get(self, path: str) -> str:
        status, body = self.host.get(path, self.opener)
        assert status == 200, f"GET {path} on host {self.host.name}: {status}\n{body[:1000]}"
        return body

    def _post(self, path: str, data: dict) -> tuple[int, str]:
        """POST a form; (status, Location) of the redirect, or fail with the page's error."""
        body = urllib.parse.urlencode(data).encode()
        try:
            with self.opener.open(self.host.url + path, data=body, timeout=30) as response:
                page = response.read().decode()
                pytest.fail(f"POST {path} on host {self.host.name} answered {response.status}, not a redirect: "
                            f"{_page_error(page)}")
        except urllib.error.HTTPError as exc:
            if exc.code in (302, 303):
                return exc.code, exc.headers.get("Location", "")
            pytest.fail(f"POST {path} on host {self.host.name}: {exc.code} {_page_error(exc.read().decode())}")

    def publish(self, title: str, body: str, *, slug: str = "", tags: str = "", category: str = "") -> int:
        """Create and publish an article through the editor's form; returns its id."""
        fields = {"title": title, "slug": slug, "body_md": body, "lang": "en", "category": category,
                  "tags": tags, "note": "", "action": "publish", "csrf_token": self.token}
        _, location = self._post("/agent/articles/new", fields)
        found = re.search(r"/agent/articles/(\d+)/edit$", location)
        assert found, f"publishing {title!r} on host {self.host.name} redirected to {location!r}"
        return int(found.group(1))

    def unpublish(self, article_id: int) -> None:
        """Press Unpublish on the article's edit page, sending the form as the page filled it in."""
        page = self._get(f"/agent/articles/{article_id}/edit")
        fields = _form_fields(page)
        fields.update(action="unpublish", csrf_token=self.token)
        _, location = self._post(f"/agent/articles/{article_id}/edit", fields)
        assert location.endswith(f"/agent/articles/{article_id}/edit"), location


def _form_fields(page: str) -> dict[str, str]:
    """The article form's fields as the edit page filled them in (inputs, the textarea, the selected language)."""
    from html import unescape

    form = page.split('class="editor-form"', 1)[-1].split("</form>", 1)[0]
    fields = {}
    for name in ("title", "slug", "category", "tags", "base_revision"):
        found = re.search(rf'<input[^>]*name="{name}"[^>]*>', form)
        value = re.search(r'value="([^"]*)"', found.group(0)) if found else None
        fields[name] = unescape(value.group(1)) if value else ""
    body = re.search(r'<textarea[^>]*name="body_md"[^>]*>(.*?)</textarea>', form, re.S)
    fields["body_md"] = unescape(body.group(1)).removeprefix("\n") if body else ""
    lang = re.search(r'<option[^>]*selected[^>]*value="([^"]+)"|<option[^>]*value="([^"]+)"[^>]*selected', form)
    fields["lang"] = (lang.group(1) or lang.group(2)) if lang else "en"
    return fields


def _page_error(page: str) -> str:
    """The error an editor page shows (or its start), for failure messages."""
    found = re.search(r'class="[^"]*(?:error|flash)[^"]*"[^>]*>(.*?)</', page, re.S)
    return " ".join((found.group(1) if found else page[:500]).split())
