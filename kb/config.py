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
    Setting("LANGUAGES", "en,zh,nb", "Content languages offered by the portal's language switch, comma-separated."),
    Setting("DEFAULT_LANGUAGE", "en", "Language assumed for a query that detection cannot place, and for new articles."),
    Setting("STARTER_ARTICLES_DIR", str(REPO_ROOT / "articles"), "Markdown articles imported by the first `kb serve` on an empty database."),
    Setting("SUPPORT_ADDRESS", "support@example.com", "Support email address shown to customers (and the From of auto-replies)."),
    Setting("AUTOREPLY_THRESHOLD", 0.2, "Auto-reply only when the best article's match score (0-1) is at least this; higher means fewer but surer replies (see README, Matching).", float),
    Setting("AUTOREPLY_MARGIN", 0.03, "Auto-reply only when the best score leads the second by at least this, so a close call goes to a person (0 turns the check off).", float),
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
    Setting("AUTOREPLY_ALLOW_LIST", "", "Senders (addresses or @domain) answered despite automatic-mail headers, comma-separated; loop protection still applies."),
    Setting("AUTOREPLY_MAX_BYTES", 10_000_000, "Larger emails are only partly read (headers and the first this many bytes).", int),
    Setting("AUTOREPLY_MESSAGE_SECONDS", 2.0, "Longest the auto-responder works on one email (parsing, cleaning, deciding, in a child process); an email that takes longer is left for a person with the reason.", float),
    Setting("AUTOREPLY_MESSAGE_MEMORY_MB", 200, "Most memory one email may add while it is parsed and decided; an email that needs more is left for a person with the reason.", int),
    Setting("AUTOREPLY_MAX_ATTEMPTS", 3, "Times the auto-responder starts on one email whose handling never finished (the worker was killed or stopped during it) before it leaves the email for a person; also the tries to mark one email when the IMAP connection breaks on it.", int),
    Setting("AUTOREPLY_RECLAIM_SECONDS", 120, "An email claimed by a worker that has not decided it after this long is taken over by another worker (or the next start): its worker died.", float),
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
