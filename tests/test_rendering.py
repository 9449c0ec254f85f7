"""Markdown rendering: the features agents use, and XSS vectors rendered inert."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from kb.rendering import plain_text, render_markdown

FORBIDDEN_TAGS = {"script", "iframe", "object", "embed", "style", "form", "meta", "base", "link", "svg",
                  "math", "input", "button", "textarea", "select", "frame", "frameset", "applet", "template"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "background", "poster", "data", "srcset"}
BAD_SCHEMES = ("javascript", "vbscript", "data", "livescript")


class Elements(HTMLParser):
    """Collects every element and its attributes, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def elements(fragment: str) -> list[tuple[str, dict[str, str | None]]]:
    """The (tag, attributes) of every element in an HTML fragment."""
    parser = Elements()
    parser.feed(fragment)
    parser.close()
    return parser.elements


def url_scheme(value: str) -> str:
    """The scheme a browser would see: entities decoded, whitespace and control characters dropped."""
    text = html.unescape(html.unescape(value))
    text = re.sub(r"[\x00-\x20\x7f]+", "", text).lower()
    return text.split(":", 1)[0] if ":" in text else ""


def assert_inert(rendered: str) -> None:
    """No dangerous element, event handler, style or script URL in the output."""
    for tag, attrs in elements(rendered):
        assert tag not in FORBIDDEN_TAGS, f"<{tag}> survived: {rendered}"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"{name}= survived: {rendered}"
            assert name != "style", f"style= survived: {rendered}"
            if name in URL_ATTRIBUTES and value:
                assert url_scheme(value) not in BAD_SCHEMES, f"{name}={value!r} survived: {rendered}"
    assert "<script" not in rendered.lower()


XSS_VECTORS = {
    "script tag": "<script>alert(1)</script>",
    "script with src": '<script src="https://evil.example/x.js"></script>',
    "uppercase script": "<SCRIPT>alert(1)</SCRIPT>",
    "script split by nesting": "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "unclosed script": "<script>alert(1)",
    "img onerror": '<img src="x" onerror="alert(1)">',
    "img onerror without quotes": "<img src=x onerror=alert(1)//>",
    "img onerror slash separator": '<img/src="x"/onerror="alert(1)">',
    "svg onload": '<svg onload="alert(1)"><circle r="1"/></svg>',
    "svg script inside": "<svg><script>alert(1)</script></svg>",
    "body onload": '<body onload="alert(1)">hi</body>',
    "div onmouseover": '<div onmouseover="alert(1)">hover</div>',
    "a javascript href": '<a href="javascript:alert(1)">x</a>',
    "a mixed-case scheme": '<a href="JaVaScRiPt:alert(1)">x</a>',
    "a entity-encoded scheme": '<a href="&#x6a;avascript:alert(1)">x</a>',
    "a decimal entities": '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    "a tab inside scheme": '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "a newline inside scheme": '<a href="jav&#x0A;ascript:alert(1)">x</a>',
    "a leading spaces": '<a href="   javascript:alert(1)">x</a>',
    "a vbscript": '<a href="vbscript:msgbox(1)">x</a>',
    "a data html": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "img data svg": '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    "img javascript src": '<img src="javascript:alert(1)">',
    "markdown link javascript": "[click](javascript:alert(1))",
    "markdown link mixed case": "[click](JaVaScRiPt:alert(1))",
    "markdown link entity": "[click](&#x6a;avascript:alert(1))",
    "markdown link data": "[click](data:text/html,<script>alert(1)</script>)",
    "markdown image javascript": "![x](javascript:alert(1))",
    "markdown image data": "![x](data:image/svg+xml,<svg onload=alert(1)>)",
    "markdown reference link": "[click][evil]\n\n[evil]: javascript:alert(1)",
    "markdown autolink": "<javascript:alert(1)>",
    "iframe": '<iframe src="https://evil.example"></iframe>',
    "iframe srcdoc": '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "object": '<object data="javascript:alert(1)"></object>',
    "embed": '<embed src="https://evil.example/x.swf">',
    "style tag": "<style>body{background:url(javascript:alert(1))}</style>",
    "style attribute expression": '<p style="width: expression(alert(1))">x</p>',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "base href": '<base href="javascript:alert(1)//">',
    "form action": '<form action="javascript:alert(1)"><input type="submit"></form>',
    "button formaction": '<button formaction="javascript:alert(1)">go</button>',
    "link stylesheet": '<link rel="stylesheet" href="https://evil.example/x.css">',
    "math xlink": '<math><a xlink:href="javascript:alert(1)">x</a></math>',
    "details ontoggle": '<details open ontoggle="alert(1)">x</details>',
    "unclosed img handler": '<img src=x onerror="alert(1)"',
    "attribute breaking quotes": '<a href="https://ok.example" " onclick="alert(1)">x</a>',
    "comment trick": "<!--<img src=x onerror=alert(1)>-->",
    "heading with handler": '# Title <img src=x onerror=alert(1)>',
    "table cell with script": "| a |\n|---|\n| <script>alert(1)</script> |",
    "list item with iframe": "- item <iframe src=x></iframe>",
    "textarea breakout": "<textarea></textarea><script>alert(1)</script>",
    "template tag": "<template><script>alert(1)</script></template>",
}


@pytest.mark.parametrize("source", XSS_VECTORS.values(), ids=XSS_VECTORS.keys())
def test_xss_vector_rendered_inert(source):
    assert_inert(render_markdown(source))


def test_there_are_at_least_35_distinct_vectors():
    assert len(set(XSS_VECTORS.values())) >= 35


def test_checker_catches_what_it_should():
    """The inertness check itself must fail on dangerous HTML, or the tests above prove nothing."""
    for dangerous in ('<script>x</script>', '<img src=x onerror=y>', '<a href="jav&#x09;ascript:x">a</a>',
                      '<a href=" DATA:text/html,x">a</a>', '<p style="x">a</p>', '<iframe></iframe>'):
        with pytest.raises(AssertionError):
            assert_inert(dangerous)


def test_html_in_fenced_code_stays_escaped_text():
    out = render_markdown('```html\n<script>alert(1)</script>\n<img src=x onerror=alert(1)>\n```')
    assert_inert(out)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert [tag for tag, _ in elements(out)] == ["pre", "code"]


def test_inline_code_stays_escaped_text():
    out = render_markdown("Type `<b onclick=x>` here")
    assert "<code>&lt;b onclick=x&gt;</code>" in out


def test_safe_links_and_images_are_kept():
    out = render_markdown("[Help](https://example.com/help) [Local](/articles/x) ![Logo](/static/logo.png)\n\n"
                          "<mailto:help@example.com>")
    found = elements(out)
    hrefs = [attrs.get("href") for tag, attrs in found if tag == "a"]
    assert "https://example.com/help" in hrefs and "/articles/x" in hrefs
    assert any(h and h.startswith("mailto:") for h in hrefs)
    assert ("img", {"src": "/static/logo.png", "alt": "Logo"}) in found
    assert all(attrs.get("rel") == "noopener noreferrer" for tag, attrs in found if tag == "a")


def test_tables_render_with_alignment_as_class_not_style():
    out = render_markdown("| Size | Chest |\n|:-----|------:|\n| M | 96 cm |")
    tags = [tag for tag, _ in elements(out)]
    assert {"table", "thead", "tbody", "tr", "th", "td"} <= set(tags)
    assert "style=" not in out
    assert 'class="align-right"' in out and "96 cm" in out


def test_fenced_code_keeps_language_class_and_text():
    out = render_markdown("```python\nprint('hi')\n```")
    assert ("code", {"class": "language-python"}) in elements(out)
    assert "print(&#39;hi&#39;)" in out or "print('hi')" in out


def test_headings_get_anchor_ids_including_non_latin():
    out = render_markdown("## Change your email\n\n## 如何申请退款\n\n## Bytte størrelse")
    ids = [attrs.get("id") for tag, attrs in elements(out) if tag == "h2"]
    assert ids[0] == "change-your-email"
    assert all(ids) and len(set(ids)) == 3
    assert "退款" in ids[1]


def test_plain_text_strips_markup_and_keeps_words():
    text = plain_text("# Reset\n\nClick **Forgot password** and see [help](https://x.example).\n\n"
                      "| a | b |\n|---|---|\n| one | two |\n\n<script>alert(1)</script>")
    assert "<" not in text and "*" not in text and "](" not in text
    assert "Reset" in text and "Forgot password" in text and "help" in text
    assert "one" in text and "two" in text
    assert "alert" not in text
    assert "  " not in text


def test_plain_text_separates_blocks_and_decodes_entities():
    text = plain_text("# Title\nFirst para & more\n\n- item one\n- item two")
    # Blocks that do not end a sentence are kept apart with a dash (kb/textblocks.py), so a
    # heading never runs into the prose after it in a snippet.
    assert text == "Title — First para & more — item one — item two"
    assert plain_text("Done.\n\nNext one?\n\nSee [Returns?](https://x.example).") == "Done. Next one? See Returns?"


def test_empty_input():
    assert render_markdown("") == ""
    assert plain_text("") == ""
