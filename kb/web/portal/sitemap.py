"""The sitemap.xml document, built with ElementTree so it is always well-formed."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from flask import url_for

from kb.catalog import SitemapEntry

NAMESPACE = "http://www.sitemaps.org/schemas/sitemap/0.9"
ENDPOINTS = {"home": "portal.home", "category": "portal.category", "article": "portal.article"}


def entry_url(entry: SitemapEntry, base_url: str) -> str:
    """The absolute URL of one sitemap entry."""
    values = {"slug": entry.slug} if entry.slug else {}
    return base_url.rstrip("/") + url_for(ENDPOINTS[entry.kind], **values)


def sitemap_xml(entries: list[SitemapEntry], base_url: str) -> bytes:
    """A sitemaps.org urlset with each entry's absolute URL and last-modified date."""
    urlset = ET.Element("urlset", xmlns=NAMESPACE)
    for entry in entries:
        url = ET.SubElement(urlset, "url")
        ET.SubElement(url, "loc").text = entry_url(entry, base_url)
        if entry.lastmod is not None:
            ET.SubElement(url, "lastmod").text = entry.lastmod.date().isoformat()
    return ET.tostring(urlset, encoding="utf-8", xml_declaration=True)
