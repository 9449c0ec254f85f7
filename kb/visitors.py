"""Who is asking, without storing who anybody is: client keys, obvious automation, bounded counts.

A client is its address as the app sees it (after KB_TRUSTED_PROXIES): an IPv4 address, or the
/64 network of an IPv6 address, since one subscriber usually holds a whole /64. kb never stores
the address: only a keyed hash of it (HMAC-SHA256 with the secret key). The hashes that count
views and votes include the day, so one address gives unrelated hashes on two days, and rows of
earlier days are deleted as new ones are written.

Counting is a compare-and-set in the database (``claim``), so a limit holds across workers and
hosts: ``UPDATE ... SET count = count + 1 WHERE count < limit`` can succeed only ``limit`` times.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from datetime import date
from typing import Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.models import PortalCount, utcnow

# Self-declared crawlers, link previewers and HTTP libraries. Real browsers never say these.
# (?<!cu) spares the CUBOT phone brand. Headless browsers are left alone: kb's own browser tests
# use one, and a script that drives a real browser is not "obvious" automation.
BOT_AGENTS = re.compile(
    r"(?<!cu)bot(?:$|[/\s;)_+-])|spider|crawl|slurp|archiver|facebookexternalhit|whatsapp|"
    r"skypeuripreview|iframely|embedly|curl/|wget/|python-|aiohttp|httpx|go-http-client|java/|okhttp|libwww|httpie|scrapy|"
    r"apache-httpclient|node-fetch|axios/|lwp-|winhttp|postman|insomnia",
    re.IGNORECASE)
# Headers with which browsers announce a prefetch or prerender nobody may ever look at.
PREFETCH_HEADERS = ("Sec-Purpose", "Purpose", "X-Purpose", "X-Moz")


def client_network(address: str | None) -> str:
    """The client an address stands for: the IPv4 address, or the IPv6 /64 ("unknown" if unreadable)."""
    try:
        ip = ipaddress.ip_address(str(address or "").strip())
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def keyed_hash(secret: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` for one purpose: without the secret key it cannot be reversed or linked."""
    message = f"{purpose}\x1f{value}".encode("utf-8", "surrogatepass")
    return hmac.new(str(secret).encode(), message, hashlib.sha256).hexdigest()[:32]


def client_key(secret: str, address: str | None, day: date) -> str:
    """The client's key for counting on ``day``; it changes every day."""
    return keyed_hash(secret, f"client-{day.isoformat()}", client_network(address))


def automation_reason(method: str, headers: Mapping[str, str]) -> str | None:
    """Why a request looks like a script, crawler or prefetch rather than a person; None if it does not."""
    if method.upper() not in ("GET", "POST"):
        return f"{method.upper()} request"
    for name in PREFETCH_HEADERS:
        value = str(headers.get(name) or "").lower()
        if "prefetch" in value or "prerender" in value or "preview" in value:
            return f"{name}: {value[:40]}"
    agent = str(headers.get("User-Agent") or "").strip()
    if not agent:
        return "no User-Agent"
    if BOT_AGENTS.search(agent):
        return "automated User-Agent"
    return None


def today() -> date:
    """Today's date in UTC: the day counts and client keys belong to."""
    return utcnow().date()


def _take(session: so.Session, key: tuple, limit: int) -> bool:
    """Raise the count of an existing row if it is below ``limit``; whether that happened."""
    kind, article_id, client, day = key
    stmt = (sa.update(PortalCount)
            .where(PortalCount.kind == kind, PortalCount.article_id == article_id,
                   PortalCount.client == client, PortalCount.day == day, PortalCount.count < limit)
            .values(count=PortalCount.count + 1).execution_options(synchronize_session=False))
    return session.execute(stmt).rowcount == 1


def claim(session: so.Session, kind: str, article_id: int, client: str, limit: int, day: date | None = None) -> bool:
    """Take one of ``limit`` slots of (kind, article, client, day); False once all are taken.

    Safe between workers: the count only grows through a compare-and-set, and two requests that
    both create the day's row meet at its primary key. The caller commits.
    """
    day = day or today()
    key = (kind, article_id, client, day)
    if _take(session, key, limit):
        return True
    exists = session.scalar(sa.select(sa.literal(1)).where(
        PortalCount.kind == kind, PortalCount.article_id == article_id,
        PortalCount.client == client, PortalCount.day == day))
    if exists:
        return False
    try:
        with session.begin_nested():
            session.add(PortalCount(kind=kind, article_id=article_id, client=client, day=day, count=1))
    except sa.exc.IntegrityError:
        return _take(session, key, limit)  # another request created the row a moment ago
    # Earlier days' keys can never match again: drop them while we are writing anyway.
    session.execute(sa.delete(PortalCount).where(PortalCount.day < day)
                    .execution_options(synchronize_session=False))
    return True
