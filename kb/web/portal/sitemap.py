"""The sitemaps, built with ElementTree so they are always well-formed.

One sitemap per language, listed by a sitemap index: a language's home and the topics that
have articles in it, each with its other-language versions as hreflang alternates, and the
articles whose own address is in that language.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable
from xml.etree import ElementTree as ET

from flask import url_for

from kb.catalog import SitemapEntry
from kb.web.i18n import LANGUAGE_ARG

NAMESPACE = "http://www.sitemaps.org/schemas/sitemap/0.9"
XHTML = "http://www.w3.org/1999/xhtml"
ENDPOINTS = {"home": "portal.home", "category": "portal.category", "article": "portal.article"}


def entry_url(kind: str, slug: str, lang: str, base_url: str) -> str:
    """The absolute URL of one page in one language."""
    values = {"slug": slug} if slug else {}
    return base_url.rstrip("/") + url_for(ENDPOINTS[kind], **values, **{LANGUAGE_ARG: lang})


def _languages_of(entries: list[SitemapEntry], offered: list[str]) -> dict[tuple[str, str], list[str]]:
    """(kind, slug) -> the languages whose sitemap lists that page (home: every language)."""
    langs: dict[tuple[str, str], list[str]] = defaultdict(list)
    for entry in entries:
        if entry.kind == "home":
            langs["home", ""] = list(offered)
        elif entry.kind == "category" and entry.lang in offered:
            langs["category", entry.slug].append(entry.lang)
    return langs


def sitemap_xml(entries: list[SitemapEntry], lang: str, base_url: str, offered: list[str],
                canonical: Callable[[str], str]) -> bytes:
    """A sitemaps.org urlset of the pages of ``lang``, with last-modified dates and alternates."""
    urlset = ET.Element("urlset", {"xmlns": NAMESPACE, "xmlns:xhtml": XHTML})
    alternates = _languages_of(entries, offered)
    for entry in entries:
        page_lang = canonical(entry.lang) if entry.kind == "article" else entry.lang or lang
        if page_lang != lang:
            continue
        url = ET.SubElement(urlset, "url")
        ET.SubElement(url, "loc").text = entry_url(entry.kind, entry.slug, lang, base_url)
        if entry.lastmod is not None:
            ET.SubElement(url, "lastmod").text = entry.lastmod.date().isoformat()
        for other in alternates.get((entry.kind, entry.slug), []):
            ET.SubElement(url, "xhtml:link", rel="alternate", hreflang=other,
                          href=entry_url(entry.kind, entry.slug, other, base_url))
    return ET.tostring(urlset, encoding="utf-8", xml_declaration=True)


def sitemap_index_xml(paths: list[str], base_url: str) -> bytes:
    """A sitemaps.org sitemapindex of the given sitemap paths."""
    index = ET.Element("sitemapindex", xmlns=NAMESPACE)
    for path in paths:
        ET.SubElement(ET.SubElement(index, "sitemap"), "loc").text = base_url.rstrip("/") + path
    return ET.tostring(index, encoding="utf-8", xml_declaration=True)
