"""Settings as data: each has a name, a default and a help text.

Precedence (lowest first): the defaults below, then an optional TOML config
file, then ``KB_<NAME>`` environment variables, then the mapping passed to
``create_app``. Nothing here is read at import time.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

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
    raise ValueError(f"not a boolean: {value!r}")


def _at_least(cast: Callable[[Any], Any], minimum: float) -> Callable[[Any], Any]:
    """A cast that also refuses numbers below ``minimum`` (a lock of 0 minutes is no lock)."""
    def checked(value: Any) -> Any:
        number = cast(value)
        if number < minimum:
            raise ValueError(f"{number} is too small: use at least {minimum:g}")
        return number
    return checked


@dataclass(frozen=True)
class Setting:
    """One documented setting: ``KB_<name>`` in the environment."""

    name: str
    default: Any
    help: str
    cast: Callable[[Any], Any] = str

    @property
    def env(self) -> str:
        """The environment variable that sets it."""
        return f"KB_{self.name}"


# Defaults that depend on the instance folder are written as "{instance}/...".
SETTINGS: tuple[Setting, ...] = (
    Setting("INSTANCE_DIR", "instance", "Folder for the SQLite database, index, secret key and config file (relative to the working directory)."),
    Setting("CONFIG_FILE", "{instance}/kb.toml", "Optional TOML file of settings (keys as below, without KB_). Missing is fine."),
    Setting("SECRET_KEY", None, "Signs sessions, CSRF tokens and links. If unset, kb generates one once and keeps it in {instance}/secret_key (mode 0600)."),
    Setting("DATABASE_URL", "sqlite:///{instance}/kb.sqlite3", "Any SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db."),
    Setting("AUTO_MIGRATE", True, "Apply pending database migrations when the app starts (else run `kb db upgrade`).", _bool),
    Setting("INDEX_DIR", "{instance}/index", "Folder of the Whoosh search index (local disk only; it is a cache rebuilt from the database)."),
    Setting("INDEXER", True, "Run the background indexer thread that applies publishes to the search index.", _bool),
    Setting("INDEXER_POLL_SECONDS", 0.5, "How often the indexer looks for changes made by other processes.", float),
    Setting("SEARCH_PAGE_SIZE", 10, "Results per page on the portal.", int),
    Setting("SEARCH_CACHE_SIZE", 512, "Search results kept in memory per process (cleared when the index changes; 0 disables).", int),
    Setting("MAX_QUERY_LENGTH", 500, "Longer queries are cut to this many characters.", int),
    Setting("BASE_URL", "http://127.0.0.1:5000", "Public address of the portal, used for absolute links (sitemap, emails). https here makes cookies Secure."),
    Setting("TRUSTED_PROXIES", 0, "How many reverse proxies in front of kb add to X-Forwarded-For (1 behind one nginx or Caddy); 0 uses the connection's address. Login throttling and view and vote counting go by this address.", _at_least(int, 0)),
    Setting("LOGIN_MAX_FAILURES", 5, "Wrong passwords in a row for one account (existing or not) before its logins are refused for LOGIN_LOCK_MINUTES.", _at_least(int, 1)),
    Setting("LOGIN_MAX_FAILURES_PER_CLIENT", 20, "Wrong passwords in a row from one client address, for any accounts, before its logins are refused.", _at_least(int, 1)),
    Setting("LOGIN_LOCK_MINUTES", 15, "How long logins are refused after too many wrong passwords; each further failure after a lock doubles it, up to 24 hours.", _at_least(float, 0.01)),
    Setting("AGENT_IDLE_HOURS", 12, "An agent's login ends after this many hours without a request.", _at_least(float, 0.01)),
    Setting("AGENT_SESSION_DAYS", 7, "An agent's login ends this many days after it began, however active.", _at_least(float, 0.01)),
    Setting("FEEDBACK_LINK_DAYS", 30, "The \"Solved\" and \"Still need help\" links of an auto-reply work for this many days after the email arrived.", _at_least(float, 0.01)),
    Setting("PORTAL_COUNTS_PER_CLIENT", 3, "Views and votes of one article counted per client address (IPv6: per /64) and day, so people sharing an office address count and a script does not count more.", _at_least(int, 1)),
    Setting("LANGUAGES", "en,zh,nb", "Languages of the portal, comma-separated: each gets its own addresses (/zh/...) and a place in the language switch; each but en needs a catalog (see Languages and translations)."),
    Setting("DEFAULT_LANGUAGE", "en", "The portal's language for a visitor who chose none and whose browser asks for none of LANGUAGES; also assumed for a query that detection cannot place, and for new articles."),
    Setting("STARTER_ARTICLES_DIR", str(REPO_ROOT / "articles"), "Markdown articles imported by the first `kb serve` on an empty database."),
    Setting("SUPPORT_ADDRESS", "support@example.com", "Support email address shown to customers (and the From of auto-replies)."),
    Setting("SUPPORT_NAME", "", "Display name of the From of auto-replies and alerts, e.g. \"Fjellstad Support\" (empty: \"Customer support\" in the reply's language)."),
    Setting("AUTOREPLY_THRESHOLD", 0.2, "Auto-reply only when the best article's match score (0-1) is at least this; higher means fewer but surer replies (see README, Matching).", float),
    Setting("AUTOREPLY_MARGIN", 0.03, "Auto-reply only when the best score leads the second by at least this, so a close call goes to a person (0 turns the check off).", float),
    Setting("AUTOREPLY_RELATIVE_CUT", 0.45, "A reply shows an article only if its score is at least this share of the best article's (0 shows all three).", float),
    Setting("TEAM_ADDRESS", "", "Where alerts go when a customer clicks \"Still need help\" (empty: no alert email)."),
    Setting("IMAP_HOST", "", "Support mailbox server for `kb autoreply`."),
    Setting("IMAP_PORT", 993, "IMAP port (993 for ssl, 143 for starttls or none).", int),
    Setting("IMAP_USER", "", "IMAP login name."),
    Setting("IMAP_PASSWORD", "", "IMAP password (leave empty when using an OAuth2 token)."),
    Setting("IMAP_SECURITY", "ssl", "ssl, starttls or none (none only on a trusted network)."),
    Setting("IMAP_FOLDER", "INBOX", "The folder kb watches."),
    Setting("IMAP_OAUTH2_TOKEN_FILE", "", "File holding an OAuth2 access token, sent with XOAUTH2 (Gmail, Microsoft 365); re-read at each login."),
    Setting("IMAP_OAUTH2_TOKEN_COMMAND", "", "Command printing an OAuth2 access token (instead of a file), run at each login."),
    Setting("IMAP_SENT_FOLDER", "", "If set, a copy of each auto-reply is APPENDed to this folder."),
    Setting("IMAP_POLL_SECONDS", 60, "Polling interval when the server has no IDLE.", int),
    Setting("IMAP_KEYWORD_REPLIED", "kb-replied", "IMAP keyword set on mail kb answered (empty: none)."),
    Setting("IMAP_KEYWORD_PERSON", "kb-needs-person", "IMAP keyword set on mail left for a person (empty: none)."),
    Setting("IMAP_KEYWORD_SKIPPED", "kb-skipped", "IMAP keyword set on mail kb deliberately skipped (empty: none)."),
    Setting("IMAP_MOVE_REPLIED", "", "If set, answered mail is moved to this folder."),
    Setting("IMAP_MOVE_PERSON", "", "If set, mail for a person is moved to this folder."),
    Setting("IMAP_MOVE_SKIPPED", "", "If set, skipped mail is moved to this folder."),
    Setting("SMTP_HOST", "", "Server that sends auto-replies and alerts."),
    Setting("SMTP_PORT", 587, "SMTP port (465 for ssl, 587 for starttls).", int),
    Setting("SMTP_USER", "", "SMTP AUTH login (empty: no AUTH)."),
    Setting("SMTP_PASSWORD", "", "SMTP AUTH password."),
    Setting("SMTP_SECURITY", "starttls", "ssl, starttls or none."),
    Setting("AUTOREPLY_WAKE_SECONDS", 30, "Longest the worker waits in IDLE before it looks at retries and alerts (well under IDLE's 29-minute limit).", int),
    Setting("AUTOREPLY_SENDER_CAP", 1, "At most this many auto-replies per sender in AUTOREPLY_SENDER_WINDOW_HOURS.", int),
    Setting("AUTOREPLY_SENDER_WINDOW_HOURS", 24, "The window of the per-sender cap, in hours.", float),
    Setting("AUTOREPLY_SEND_ATTEMPTS", 10, "A reply the SMTP server turns away for now (4xx, unreachable) is tried this many times, with growing pauses (1 min doubling to 1 h), before a person takes the email. A 5xx refusal goes to a person at once.", int),
    Setting("AUTOREPLY_ALLOW_LIST", "", "Senders (addresses or @domain) answered despite automatic-mail headers, comma-separated; loop protection still applies."),
    Setting("AUTOREPLY_MAX_BYTES", 10_000_000, "Larger emails are only partly read (headers and the first this many bytes).", int),
    Setting("MEDIA_MAX_BYTES", 5_000_000, "Largest image an agent may upload, in bytes.", int),
    Setting("MEDIA_MAX_PIXELS", 25_000_000, "Largest image an agent may upload, in pixels (width × height), so no image can exhaust a browser's memory.", int),
    Setting("MEDIA_CACHE_SECONDS", 3600, "How long browsers and proxies may keep a published article's image before asking again.", int),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def load_config(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Merge defaults, the config file, ``KB_`` variables and ``overrides`` into one dict."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    for source in (_env_values(environ), overrides):
        if "INSTANCE_DIR" in source:
            values["INSTANCE_DIR"] = source["INSTANCE_DIR"]
    instance = Path(values["INSTANCE_DIR"]).resolve()
    config_file = overrides.get("CONFIG_FILE") or environ.get("KB_CONFIG_FILE") or values["CONFIG_FILE"]
    values.update(_file_values(Path(str(config_file).format(instance=instance))))
    values.update(_env_values(environ))
    values.update(overrides)
    values["INSTANCE_DIR"] = str(instance)
    for setting in SETTINGS:
        values[setting.name] = _cast(setting, values[setting.name], instance)
    return values


def _cast(setting: Setting, value: Any, instance: Path) -> Any:
    """Apply the setting's type and expand ``{instance}``; fail with a readable message."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.replace("{instance}", str(instance))
    try:
        return setting.cast(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{setting.env}: {exc}") from exc


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


def configured_languages(config: Mapping[str, Any]) -> list[str]:
    """The content language codes of the LANGUAGES setting, in order."""
    return [code.strip() for code in str(config["LANGUAGES"]).split(",") if code.strip()]


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
