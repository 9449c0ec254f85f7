"""Settings as data: each has a name, a default and a help text.

Precedence (lowest first): the defaults below, then an optional TOML config
file, then ``KB_<NAME>`` environment variables, then the mapping passed to
``create_app``. Nothing here is read at import time.
"""

from __future__ import annotations

import functools
import os
import secrets
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from kb import config_rules as rules
from kb.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


def _bool(value: Any) -> bool:
    """Parse a boolean the way people write it in environment variables."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("not true or false")


def _whole(value: Any) -> int:
    """A whole number: 10, "10" or 10.0; never 1.5, "1.5" or a boolean."""
    if isinstance(value, bool):
        raise ValueError("not a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not a whole number")
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError("not a whole number") from None


def _number(value: Any) -> float:
    """A number, "0.5" or 0.5; never a boolean."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    try:
        return float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ValueError("not a number") from None


def _optional_number(value: Any) -> float | None:
    """A number, or None for an empty value (a setting left unset)."""
    if isinstance(value, str) and not value.strip():
        return None
    return _number(value)


def _word(value: Any) -> str:
    """A keyword such as ssl or starttls, case and surrounding blanks ignored."""
    return str(value).strip().lower()


def _text(value: Any) -> str:
    """Text as given; TOML numbers and the like become their text."""
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class Setting:
    """One documented setting: ``KB_<name>`` in the environment, checked by ``rule`` at start."""

    name: str
    default: Any
    help: str
    cast: Callable[[Any], Any] = _text
    rule: rules.Rule | None = None  # what values it accepts; tests/test_config.py insists on one
    secret: bool = False  # never repeat the value in an error message

    @property
    def env(self) -> str:
        """The environment variable that sets it."""
        return f"KB_{self.name}"


S = Setting
# Defaults that depend on the instance folder are written as "{instance}/...".
SETTINGS: tuple[Setting, ...] = (
    S("INSTANCE_DIR", "instance", "Folder for the SQLite database, index, secret key and config file (relative to the working directory).", rule=rules.folder()),
    S("CONFIG_FILE", "{instance}/kb.toml", "Optional TOML file of settings (keys as below, without KB_). Missing is fine.", rule=rules.folder()),
    S("SECRET_KEY", None, "Signs sessions, CSRF tokens and links. If unset, kb generates one once and keeps it in {instance}/secret_key (mode 0600).", rule=rules.secret(32), secret=True),
    S("DATABASE_URL", "sqlite:///{instance}/kb.sqlite3", "Any SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db (install `kb[postgres]` for PostgreSQL).", rule=rules.database_url(), secret=True),
    S("AUTO_MIGRATE", True, "Apply pending database migrations when the app starts (else run `kb db upgrade`).", _bool, rules.flag()),
    S("SEARCH_BACKEND", "whoosh", "whoosh: a Whoosh index on each host's local disk (one machine, or hosts that each follow the database's change feed); postgres: PostgreSQL full-text search in the database itself, no search state on any host (needs a PostgreSQL DATABASE_URL and pg_trgm). See \"Running on several hosts\".", _word, rules.choice("whoosh", "postgres")),
    S("INDEX_DIR", "{instance}/index", "Folder of the Whoosh search index (local disk only; it is a cache rebuilt from the database).", rule=rules.folder()),
    S("INDEXER", True, "Run the background indexer thread that applies publishes to the search index.", _bool, rules.flag()),
    S("INDEXER_POLL_SECONDS", 0.5, "How often the indexer looks for changes made by other processes.", _number, rules.seconds(0.01, 3600)),
    S("INDEX_FEED_DAYS", 7, "Days the database keeps each index change for Whoosh hosts to follow; a host down longer rebuilds its index from the database when it comes back.", _number, rules.number(0.01, 3650, whole=False, unit="days")),
    S("READY_MAX_INDEX_LAG_SECONDS", 60, "/readyz answers 503 while this host's search index is more than this many seconds behind the database.", _number, rules.seconds(1, 86_400)),
    S("HOST_NAME", "", "This host's name in worker heartbeats and `kb doctor` (empty: the machine's hostname). Give each host its own.", rule=rules.text()),
    S("SEARCH_PAGE_SIZE", 10, "Results per page on the portal.", _whole, rules.number(1, 100)),
    S("SEARCH_CACHE_SIZE", 512, "Search results kept in memory per process (cleared when the index changes; 0 disables).", _whole, rules.number(0, 100_000)),
    S("RELATED_CACHE_SIZE", 20_000, "Articles whose related-articles list is kept in memory per process, so an article page seldom searches (cleared when the index changes; 0 disables).", _whole, rules.number(0, 1_000_000)),
    S("PAGE_CACHE_SIZE", 1000, "Portal search and article pages and API search answers kept whole in memory per process, within PAGE_CACHE_MB (cleared when any article, the index or the synonyms change; each search is still logged; 0 disables).", _whole, rules.number(0, 100_000)),
    S("PAGE_CACHE_MB", 64, "Most memory, in MB, that one process's kept pages take (their text as Python holds it): the least recently served go first, and a page larger than a quarter of it (a very long article) is rendered each time instead.", _number, rules.number(0.1, 100_000, whole=False, unit="MB")),
    S("PAGE_CACHE_CHECK_SECONDS", 0.1, "Each process asks the database and its search index whether content changed at most this often before serving a kept page: a change shows on public pages within this many seconds of reaching the index (at once in the process that made it); 0 asks on every page.", _number, rules.seconds(0, 60)),
    S("PAGE_CACHE_SHARED", True, "The processes of one host share their kept pages through {instance}/pagecache.sqlite3, so each page is rendered about once per host, not once per worker, and a worker or host started again on the same release and content serves the pages kept before (a cache: deleting the file loses nothing).", _bool, rules.flag()),
    S("MAX_QUERY_LENGTH", 500, "Longer queries are cut to this many characters.", _whole, rules.number(10, 10_000)),
    S("BASE_URL", "http://127.0.0.1:5000", "Public address of the portal, used for absolute links (sitemap, emails). https here makes cookies Secure.", rule=rules.http_url()),
    S("TRUSTED_PROXIES", 0, "How many reverse proxies in front of kb add to X-Forwarded-For (1 behind one nginx or Caddy); 0 uses the connection's address. Login throttling and view and vote counting go by this address.", _whole, rules.number(0, 10)),
    S("LOGIN_MAX_FAILURES", 5, "Wrong passwords in a row for one account (existing or not) before its logins are refused for LOGIN_LOCK_MINUTES.", _whole, rules.number(1, 1000)),
    S("LOGIN_MAX_FAILURES_PER_CLIENT", 20, "Wrong passwords in a row from one client address, for any accounts, before its logins are refused.", _whole, rules.number(1, 100_000)),
    S("LOGIN_LOCK_MINUTES", 15, "How long logins are refused after too many wrong passwords; each further failure after a lock doubles it, up to 24 hours.", _number, rules.number(0.01, 1440, whole=False, unit="minutes")),
    S("AGENT_IDLE_HOURS", 12, "An agent's login ends after this many hours without a request.", _number, rules.number(0.01, 8760, whole=False, unit="hours")),
    S("AGENT_SESSION_DAYS", 7, "An agent's login ends this many days after it began, however active.", _number, rules.number(0.01, 366, whole=False, unit="days")),
    S("FEEDBACK_LINK_DAYS", 30, "The \"Solved\" and \"Still need help\" links of an auto-reply work for this many days after the email arrived.", _number, rules.number(0.01, 3660, whole=False, unit="days")),
    S("PORTAL_COUNTS_PER_CLIENT", 3, "Views and votes of one article counted per client address (IPv6: per /64) and day, so people sharing an office address count and a script does not count more.", _whole, rules.number(1, 100_000)),
    S("LANGUAGES", "en,zh,nb", "Languages of the portal and the auto-reply, comma-separated: each gets its own addresses (/zh/...) and a place in the language switch, and emails written in it are answered in it; each but en needs a catalog (see Languages and translations).", rule=rules.languages()),
    S("DEFAULT_LANGUAGE", "en", "The portal's language for a visitor who chose none and whose browser asks for none of LANGUAGES, and the auto-reply's for an email in none of them; the language of the team's alerts; also assumed for a query that detection cannot place, and for new articles.", _word, rules.language_in("LANGUAGES")),
    S("STARTER_ARTICLES_DIR", str(REPO_ROOT / "articles"), "Markdown articles imported by the first `kb serve` on an empty database (empty: none).", rule=rules.optional_path()),
    S("SAMPLE_DATA", True, "The first `kb serve` on an empty database also loads sample follow-up cases and customers, marked \"(sample)\" (`kb sample remove` deletes them).", _bool, rules.flag()),
    S("SUPPORT_ADDRESS", "support@example.com", "Support email address shown to customers (and the From of auto-replies).", rule=rules.address()),
    S("SUPPORT_NAME", "", "Display name of the From of auto-replies and alerts, e.g. \"Fjellstad Support\" (empty: \"Customer support\" in the reply's language).", rule=rules.text()),
    S("AUTOREPLY_THRESHOLD", 0.2, "Auto-reply only when the best article's match score (0-1) is at least this; higher means fewer but surer replies. Chosen on the stackfaq dev split with `benchmarks/eval_match.py stackfaq dev --sweep`.", _number, rules.number(0, 1, whole=False)),
    S("AUTOREPLY_MARGIN", 0.03, "Auto-reply only when the best score leads the second by at least this, so a close call goes to a person (0 turns the check off).", _number, rules.number(0, 1, whole=False)),
    S("AUTOREPLY_RELATIVE_CUT", 0.45, "A reply shows an article only if its score is at least this share of the best article's (0 shows all three). Chosen on the stackfaq dev split with `benchmarks/eval_match.py stackfaq dev --cut-sweep`.", _number, rules.number(0, 1, whole=False)),
    S("TEAM_ADDRESS", "", "Where alerts go when a customer clicks \"Still need help\" (empty: no alert email).", rule=rules.addresses()),
    S("IMAP_HOST", "", "Support mailbox server for `kb autoreply`.", rule=rules.host()),
    S("IMAP_PORT", 993, "IMAP port (993 for ssl, 143 for starttls or none).", _whole, rules.port()),
    S("IMAP_USER", "", "IMAP login name.", rule=rules.text()),
    S("IMAP_PASSWORD", "", "IMAP password (leave empty when using an OAuth2 token).", rule=rules.text(), secret=True),
    S("IMAP_SECURITY", "ssl", "ssl, starttls or none (none only on a trusted network).", _word, rules.choice("ssl", "starttls", "none")),
    S("IMAP_FOLDER", "INBOX", "The folder kb watches.", rule=rules.text(required=True)),
    S("IMAP_OAUTH2_TOKEN_FILE", "", "File holding an OAuth2 access token, sent with XOAUTH2 (Gmail, Microsoft 365); re-read at each login.", rule=rules.optional_path()),
    S("IMAP_OAUTH2_TOKEN_COMMAND", "", "Command printing an OAuth2 access token (instead of a file), run at each login.", rule=rules.text(), secret=True),
    S("IMAP_SENT_FOLDER", "", "If set, a copy of each auto-reply is APPENDed to this folder.", rule=rules.text()),
    S("IMAP_POLL_SECONDS", 60, "Polling interval when the server has no IDLE.", _whole, rules.number(1, 3600, unit="seconds")),
    S("IMAP_KEYWORD_REPLIED", "kb-replied", "IMAP keyword set on mail kb answered (empty: none).", rule=rules.imap_keyword()),
    S("IMAP_KEYWORD_PERSON", "kb-needs-person", "IMAP keyword set on mail left for a person (empty: none).", rule=rules.imap_keyword()),
    S("IMAP_KEYWORD_SKIPPED", "kb-skipped", "IMAP keyword set on mail kb deliberately skipped (empty: none).", rule=rules.imap_keyword()),
    S("IMAP_MOVE_REPLIED", "", "If set, answered mail is moved to this folder.", rule=rules.text()),
    S("IMAP_MOVE_PERSON", "", "If set, mail for a person is moved to this folder.", rule=rules.text()),
    S("IMAP_MOVE_SKIPPED", "", "If set, skipped mail is moved to this folder.", rule=rules.text()),
    S("SMTP_HOST", "", "Server that sends auto-replies and alerts.", rule=rules.host()),
    S("SMTP_PORT", 587, "SMTP port (465 for ssl, 587 for starttls).", _whole, rules.port()),
    S("SMTP_USER", "", "SMTP AUTH login (empty: no AUTH).", rule=rules.text()),
    S("SMTP_PASSWORD", "", "SMTP AUTH password.", rule=rules.text(), secret=True),
    S("SMTP_SECURITY", "starttls", "ssl, starttls or none.", _word, rules.choice("ssl", "starttls", "none")),
    S("AUTOREPLY_WAKE_SECONDS", 30, "Longest the worker waits in IDLE before it looks at retries and alerts (well under IDLE's 29-minute limit).", _whole, rules.number(1, 1740, unit="seconds")),
    S("AUTOREPLY_SENDER_CAP", 1, "At most this many auto-replies per sender in AUTOREPLY_SENDER_WINDOW_HOURS.", _whole, rules.number(1, 1000)),
    S("AUTOREPLY_SENDER_WINDOW_HOURS", 24, "The window of the per-sender cap, in hours.", _number, rules.number(0.1, 8760, whole=False, unit="hours")),
    S("AUTOREPLY_SEND_ATTEMPTS", 10, "A reply the SMTP server turns away for now (4xx, unreachable) is tried this many times, with growing pauses (1 min doubling to 1 h), before a person takes the email. A 5xx refusal goes to a person at once.", _whole, rules.number(1, 100)),
    S("AUTOREPLY_ALLOW_LIST", "", "Senders (addresses or @domain) answered despite automatic-mail headers, comma-separated; loop protection still applies.", rule=rules.addresses(domains=True)),
    S("AUTOREPLY_MAX_BYTES", 10_000_000, "Larger emails are only partly read (headers and the first this many bytes).", _whole, rules.number(10_000, 1_000_000_000, unit="bytes")),
    S("AUTOREPLY_MESSAGE_SECONDS", 2.0, "Longest the auto-responder works on one email (parsing, cleaning, deciding, in a child process); an email that takes longer is left for a person with the reason.", _number, rules.seconds(0.1, 600)),
    S("AUTOREPLY_MESSAGE_MEMORY_MB", 200, "Most memory one email may add while it is parsed and decided; an email that needs more is left for a person with the reason.", _whole, rules.number(50, 100_000, unit="MB")),
    S("AUTOREPLY_MAX_ATTEMPTS", 3, "Times the auto-responder starts on one email whose handling never finished (the worker was killed or stopped during it) before it leaves the email for a person; also the tries to mark one email when the IMAP connection breaks on it.", _whole, rules.number(1, 100)),
    S("AUTOREPLY_RECLAIM_SECONDS", 120, "An email claimed by a worker that has not decided it after this long is taken over by another worker (or the next start): its worker died.", _number, rules.seconds(1, 86_400)),
    S("CUSTOMER_TEXT_DAYS", None, "The older name of RETENTION_DAYS, still honoured: when set, it is the retention period for everything RETENTION_DAYS covers (rename it to KB_RETENTION_DAYS).", _optional_number, rules.optional(rules.number(1, 36_500, whole=False, unit="days"))),
    S("RETENTION_DAYS", 365, "Personal data is kept this many days, then a daily job blanks it and keeps the rows, so every count stays: the text and subject of emails and contact-form questions, search queries and visitor ids (search log, portal visits), vote and survey comments, follow-up signals' words, agents' notes and messages about customers, the messages of service-recovery offers.", _number, rules.number(1, 36_500, whole=False, unit="days")),
    S("ASSUMED_RESOLVED_HOURS", 72, "An answer kb gave (an auto-reply, or one shown on the contact form) counts as resolved (\"assumed\") when the customer has not written again within this many hours; a \"Solved\" click counts at once (\"confirmed\"). Writing again within 7 days, or \"Still need help\", makes it \"reopened\", never resolved.", _number, rules.number(1, 720, whole=False, unit="hours")),
    S("SEARCH_COLLAPSE_SECONDS", 10, "A search that extends (or shortens) the same visitor's previous query within this many seconds updates that search's log row instead of adding one, so typing counts once.", _number, rules.seconds(0, 3600)),
    S("SEARCH_LOG_FLUSH_SECONDS", 1, "The search-log rows of searches without a visitor (the JSON API's) wait in memory up to this many seconds and are written together, so such a search never commits; 0 writes each in its request.", _number, rules.seconds(0, 60)),
    S("CONTACT_PER_ADDRESS", 5, "Questions one email address may send through the contact form per hour.", _whole, rules.number(1, 10_000)),
    S("CONTACT_PER_CLIENT", 20, "Questions one client address (IPv6: per /64) may send through the contact form per hour, for any email addresses.", _whole, rules.number(1, 100_000)),
    S("CONTACT_MAX_CHARS", 10_000, "The longest question the contact form takes, in characters.", _whole, rules.number(100, 1_000_000, unit="characters")),
    S("ARTICLE_FLAG_VOTES", 10, "An article is flagged to its author once it has at least this many votes and fewer than ARTICLE_FLAG_HELPFUL of them say helpful.", _whole, rules.number(1, 100_000)),
    S("ARTICLE_FLAG_HELPFUL", 0.6, "The helpful share (0-1) under which an article with ARTICLE_FLAG_VOTES votes is flagged.", _number, rules.number(0, 1, whole=False)),
    S("JOBS_RUNNER", True, "Run timed work (alerts, escalations, re-surveys) in a background thread of this process. Safe on any number of processes and hosts at once; or turn it off and run `kb jobs run` instead.", _bool, rules.flag()),
    S("JOBS_POLL_SECONDS", 5, "How often a job runner looks for due jobs (a job scheduled in the same process starts at once).", _number, rules.seconds(0.05, 3600)),
    S("JOBS_LEASE_SECONDS", 120, "A job whose runner has not finished it after this long is taken over by another runner (its runner died). Longer than any job takes.", _number, rules.seconds(1, 86_400)),
    S("JOBS_MAX_ATTEMPTS", 5, "A failing job is tried this many times, with growing pauses, before it is given up (listed by `kb jobs list`).", _whole, rules.number(1, 100)),
    S("JOBS_RETRY_SECONDS", 30, "The first pause before a failed job is tried again; each further failure doubles it, up to an hour.", _number, rules.seconds(0.01, 3600)),
    S("ALERT_WEBHOOK_URL", "", "If set, each follow-up alert and escalation is also POSTed here as JSON (a Slack-compatible `text` field plus structured fields).", rule=rules.optional_http_url()),
    S("ESCALATION_ADDRESS", "", "Where a case not acknowledged in FOLLOWUP_ACK_MINUTES is escalated (comma-separated; empty: every active admin).", rule=rules.addresses()),
    S("FOLLOWUP_ACK_MINUTES", 15, "A follow-up case not acknowledged within this many minutes (of business hours) is escalated.", _number, rules.number(1, 10_080, whole=False, unit="minutes")),
    S("BUSINESS_HOURS", "", "When the escalation clock runs, in TIME_ZONE, e.g. `mon-fri 09:00-17:00, sat 10:00-14:00`; outside these hours it waits (empty: always).", rule=rules.business_hours()),
    S("TIME_ZONE", "UTC", "The time zone of BUSINESS_HOURS (an IANA name such as Europe/Oslo; daylight saving time is followed).", rule=rules.time_zone()),
    S("RECOVERY_WEEK_START", "monday", "The day an agent's weekly service-recovery budget starts again, at midnight in TIME_ZONE.", _word, rules.choice("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")),
    S("APPROVAL_ESCALATE_MINUTES", 30, "A service-recovery offer above a bound that no approver has answered within this many minutes goes to every active admin.", _number, rules.number(1, 10_080, whole=False, unit="minutes")),
    S("RESURVEY_DELAY_HOURS", 24, "Hours after a case is resolved before kb asks the customer how satisfied they are (1-5).", _number, rules.number(0, 720, whole=False, unit="hours")),
    S("SURVEY_LINK_DAYS", 14, "A satisfaction survey's link works for this many days after it was sent.", _number, rules.number(0.01, 366, whole=False, unit="days")),
    S("ROOT_CAUSES", "product,delivery,billing,article,agent,other", "Root-cause categories an agent picks from to resolve a case, comma-separated (article: article wrong or missing; agent: agent behaviour).", rule=rules.word_list()),
    S("MEDIA_MAX_BYTES", 5_000_000, "Largest image an agent may upload, in bytes.", _whole, rules.number(1, 100_000_000, unit="bytes")),
    S("MEDIA_MAX_PIXELS", 25_000_000, "Largest image an agent may upload, in pixels (width × height), so no image can exhaust a browser's memory.", _whole, rules.number(1, 500_000_000, unit="pixels")),
    S("MEDIA_CACHE_SECONDS", 3600, "How long browsers and proxies may keep a published article's image before asking again.", _whole, rules.number(0, 31_536_000, unit="seconds")),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def load_config(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Merge defaults, the config file, ``KB_`` variables and ``overrides``; check every value by its rule."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    origin = dict.fromkeys(values, "default")
    for source, where in ((_env_values(environ), "from the environment"), (overrides, "passed to create_app")):
        if "INSTANCE_DIR" in source:
            values["INSTANCE_DIR"], origin["INSTANCE_DIR"] = source["INSTANCE_DIR"], where
    _check(SETTINGS_BY_NAME["INSTANCE_DIR"], values["INSTANCE_DIR"], values, origin["INSTANCE_DIR"])
    instance = Path(values["INSTANCE_DIR"]).resolve()
    config_file = overrides.get("CONFIG_FILE") or environ.get("KB_CONFIG_FILE") or values["CONFIG_FILE"]
    config_path = Path(str(config_file).replace("{instance}", str(instance)))
    for source, where in ((_file_values(config_path), f"in {config_path}"), (_env_values(environ), "from the environment"),
                          (overrides, "passed to create_app")):
        values.update(source)
        origin.update(dict.fromkeys(set(source) & set(origin), where))
    values["INSTANCE_DIR"] = str(instance)
    for setting in SETTINGS:
        values[setting.name] = _cast(setting, values[setting.name], instance, origin[setting.name])
    for setting in SETTINGS:
        _check(setting, values[setting.name], values, origin[setting.name])
    return values


def _cast(setting: Setting, value: Any, instance: Path, origin: str) -> Any:
    """Apply the setting's type and expand ``{instance}``; fail with a message that says what to do."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.replace("{instance}", str(instance))
    try:
        return setting.cast(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(_refusal(setting, value, origin, str(exc))) from exc


def _check(setting: Setting, value: Any, values: Mapping[str, Any], origin: str) -> None:
    """Raise ConfigError if the setting's rule refuses ``value``."""
    if setting.rule is None:
        return
    try:
        accepted = setting.rule.accepts(value, values)
    except (TypeError, ValueError):
        accepted = False
    if not accepted:
        raise ConfigError(_refusal(setting, value, origin, "not allowed"))


def _refusal(setting: Setting, value: Any, origin: str, problem: str) -> str:
    """One line naming the setting, where its value came from, the problem, and what to set instead."""
    shown = "" if setting.secret else f" = {str(value)[:80]!r}"
    origin = "" if origin == "default" else f" ({origin})"
    allowed = setting.rule.allowed if setting.rule else "a valid value"
    return f"{setting.env}{shown}{origin} is {problem}: set it to {allowed}."


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings given as ``KB_`` environment variables."""
    return {s.name: environ[s.env] for s in SETTINGS if s.env in environ}


def _file_values(path: Path) -> dict[str, Any]:
    """Settings from the TOML config file, if there is one."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(SETTINGS_BY_NAME))
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(unknown)}")
    return data


def settings_table() -> str:
    """The README's settings table, generated from SETTINGS (``python -m kb.config`` prints it)."""
    rows = ["| Environment variable | Default | Allowed values | What it does |", "|---|---|---|---|"]
    for s in SETTINGS:
        cells = [f"`{s.env}`", _documented_default(s.default), s.rule.allowed if s.rule else "?", s.help]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)


def _documented_default(default: Any) -> str:
    """How the README writes a default: in backticks, with the checkout folder shown as {repo}."""
    if default is None:
        return "*(none)*"
    if default == "":
        return "*(empty)*"
    if isinstance(default, bool):
        return "`true`" if default else "`false`"
    return "`" + str(default).replace(str(REPO_ROOT), "{repo}") + "`"


def configured_languages(config: Mapping[str, Any]) -> list[str]:
    """The content language codes of the LANGUAGES setting, in order."""
    languages = config.get("LANGUAGES", SETTINGS_BY_NAME["LANGUAGES"].default)  # unset: the documented default
    return list(_language_codes(str(languages)))


@functools.lru_cache(maxsize=16)
def _language_codes(languages: str) -> tuple[str, ...]:
    """The codes of a LANGUAGES value; kept, since every portal URL that url_for builds asks for them."""
    return tuple(code.strip() for code in languages.split(",") if code.strip())


def ensure_secret_key(config: dict[str, Any]) -> str:
    """Return the secret key, generating and keeping one in the instance folder if unset."""
    if config.get("SECRET_KEY"):
        return config["SECRET_KEY"]
    path = Path(config["INSTANCE_DIR"]) / "secret_key"
    if not path.exists():
        _write_secret_key(path)
    key = path.read_text().strip()
    if len(key) < 32:
        raise ConfigError(f"{path} holds a secret key shorter than 32 characters; delete it or set KB_SECRET_KEY")
    return key


def _write_secret_key(path: Path) -> None:
    """Write a new key atomically: several workers starting at once all end up reading one key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret_key-")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
        os.link(tmp, path)  # fails if another process won the race; its key is then the one
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


if __name__ == "__main__":
    print(settings_table())
