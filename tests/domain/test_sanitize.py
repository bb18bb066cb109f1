"""Hostile markdown in, safe markdown out: every row names what must disappear and what must survive."""

from __future__ import annotations

import re

import pytest

from domain.sanitize import is_dangerous_url, sanitize_markdown

# (id, input, fragments that must NOT be in the output, fragments that MUST be in the output)
CASES: list[tuple[str, str, list[str], list[str]]] = [
    ("script element", "Hello <script>alert(1)</script> world", ["<script", "alert(1)"], ["Hello", "world"]),
    ("script upper case", "x <ScRiPt >alert(1)</SCRIPT > y", ["alert(1)", "ScRiPt", "SCRIPT"], ["x", "y"]),
    ("unclosed script", "intro <script src=//evil.example/x.js> rest", ["<script", "evil.example"], ["rest"]),
    ("iframe", "<iframe src=https://evil.example></iframe>ok", ["iframe", "evil.example"], ["ok"]),
    (
        "object and embed",
        "<object data=x.swf></object><embed src=x.swf>ok",
        ["object", "embed", "x.swf"],
        ["ok"],
    ),
    (
        "style element",
        "<style>body{background:url(javascript:alert(1))}</style>ok",
        ["style", "javascript"],
        ["ok"],
    ),
    ("svg onload", "<svg onload=alert(1)><circle/></svg>ok", ["svg", "onload", "alert"], ["ok"]),
    (
        "event handler",
        '<img src="cat.png" onerror="alert(1)" alt="cat">',
        ["onerror", "alert"],
        ['src="cat.png"', 'alt="cat"'],
    ),
    ("event handler unquoted", "<b onmouseover=alert(1)>bold</b>", ["onmouseover", "alert"], ["<b>bold</b>"]),
    ("event handler slash separated", "<img/src=x/onerror=alert(1)>", ["<img"], ["&lt;img"]),
    (
        "style attribute",
        '<p style="background:url(javascript:x)">t</p>',
        ["style=", "javascript"],
        ["<p>t</p>"],
    ),
    ("js link", "[click](javascript:alert(1))", ["javascript", "](", "alert"], ["click"]),
    ("vbscript link", "[click](VBScript:msgbox(1))", ["VBScript", "msgbox"], ["click"]),
    ("data image", "![pic](data:image/svg+xml;base64,PHN2Zz4=)", ["data:", "PHN2"], ["pic"]),
    ("entity-obfuscated link", "[x](&#106;&#97;vascript:alert(1))", ["&#106;", "alert"], ["x"]),
    ("hex entity without semicolon", "[x](&#x6A&#x61vascript:alert(1))", ["&#x6A", "alert"], ["x"]),
    ("named entity colon", "[x](javascript&colon;alert(1))", ["javascript", "alert"], ["x"]),
    ("tab inside scheme", "[x](java\tscript:alert(1))", ["java\tscript"], ["[x]"]),
    ("backslash-escaped colon", "[x](javascript\\:alert(1))", ["javascript", "alert"], ["x"]),
    ("angle destination", "[x](<javascript:alert(1)>)", ["javascript"], ["x"]),
    ("link with title", '[x](javascript:alert(1) "title")', ["javascript"], ["x"]),
    ("nested brackets", "[a [b]](javascript:alert(1))", ["javascript"], ["a [b]"]),
    (
        "link inside link text",
        "[[x](javascript:alert(1))](https://ok.example)",
        ["javascript"],
        ["https://ok.example"],
    ),
    ("code span as link text", "[`run()`](javascript:alert(1))", ["javascript"], ["`run()`"]),
    ("autolink js", "<javascript:alert(1)> after", ["javascript", "alert"], ["after"]),
    ("autolink data", "<data:text/html,<script>alert(1)</script>>", ["<script", "<data:"], []),
    ("reference definition", "[x][r]\n\n[r]: javascript:alert(1)\n", ["javascript"], ["[x][r]"]),
    (
        "reference definition next line",
        "[x][r]\n\n[r]:\n   JAVASCRIPT:alert(1) 'ti'\n",
        ["JAVASCRIPT"],
        ["[x][r]"],
    ),
    ("html href js", '<a href="javascript:alert(1)">x</a>', ["javascript", "href"], ["<a>x</a>"]),
    (
        "html href entity + tab",
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        ["ascript", "href"],
        ["<a>x</a>"],
    ),
    ("html href leading space", "<a href=' javascript:alert(1)'>x</a>", ["javascript"], ["<a>x</a>"]),
    (
        "srcset data candidate",
        '<img srcset="a.png 1x, data:image/png;base64,AA 2x" src="a.png">',
        ["srcset", "data:"],
        ['src="a.png"'],
    ),
    ("xlink href", '<a xlink:href="javascript:alert(1)">x</a>', ["javascript"], ["<a>x</a>"]),
    ("comment", "a <!-- <script>alert(1)</script> --> b", ["<!--", "script"], ["a", "b"]),
    ("unclosed comment", "a <!-- <script>alert(1)</script>", ["<!--", "<script"], ["&lt;!--"]),
    ("recombination", "<scr<script>ipt>alert(1)</script>", ["<script"], []),
    (
        "html block swallowing a fence",
        "<div>\n```\n<script>alert(1)</script>\n```\n</div>",
        ["<script"],
        ["<div>"],
    ),
    (
        "removal reveals html block",
        "<script>x</script><div>\n```\n<img src=x onerror=alert(1)>\n```",
        ["onerror"],
        ["<div>"],
    ),
    ("backslash-escaped backtick is not code", "\\`<img src=x onerror=alert(1)>\\`", ["onerror"], []),
    ("attribute hiding in fake code span", '<a title="`" onmouseover="alert(1)`">x</a>', ["onmouseover"], []),
    ("code span cannot cross into an html block", "`\n<div>\n<script>alert(1)</script>\n`", ["<script"], []),
    (
        "html block inside a list item",
        "1.  item\n    <div>\n    `<img src=x onerror=alert(1)>`",
        ["onerror"],
        [],
    ),
    ("blockquote fence is not trusted", "> ```\n> <script>alert(1)</script>\n> ```", ["<script"], ["> ```"]),
]


@pytest.mark.parametrize(("name", "source", "absent", "present"), CASES, ids=[case[0] for case in CASES])
def test_hostile_markdown_is_neutralised(
    name: str, source: str, absent: list[str], present: list[str]
) -> None:
    result = sanitize_markdown(source)
    for fragment in absent:
        assert fragment.lower() not in result.lower(), f"{name}: {fragment!r} survived in {result!r}"
    for fragment in present:
        assert fragment in result, f"{name}: {fragment!r} lost from {result!r}"
    assert sanitize_markdown(result) == result, "sanitizing twice must not change the result"


SAFE_DOCUMENT = """## Objectives
- Understand `<script type="module">` loading
- Compare a < b and b > a

## Worked examples
```html
<script type="module">
  import { x } from "./x.js";
  document.body.onload = () => alert("hi");
</script>
<a href="javascript:void(0)">old style</a>
```

~~~js
const html = `<img src=x onerror=alert(1)>`;
~~~

See [MDN](https://developer.mozilla.org/en-US/docs/Web/HTML/Element/script "MDN") and
<https://html.spec.whatwg.org/> or ![diagram](https://example.org/d.png).

<details><summary>Hint</summary>Use <kbd>Ctrl</kbd>+<kbd>C</kbd>.</details>

[ref]: https://example.org/ref "Reference"
"""


def test_safe_lesson_markdown_is_unchanged() -> None:
    assert sanitize_markdown(SAFE_DOCUMENT) == SAFE_DOCUMENT.replace("a < b", "a &lt; b")


def test_code_fence_content_is_kept_byte_for_byte() -> None:
    fence = "```html\n<script>alert('shown as code')</script>\n<iframe src=javascript:x></iframe>\n```"
    result = sanitize_markdown(f"Before <script>bad()</script>\n\n{fence}\n\nAfter <script>bad()</script>")
    assert fence in result
    assert "bad()" not in result


def test_inline_code_span_content_is_kept() -> None:
    text = 'Put ``<script src="x.js">`` or `<iframe onload=f()>` in the page; <iframe onload=f()>'
    result = sanitize_markdown(text)
    assert '``<script src="x.js">``' in result
    assert "`<iframe onload=f()>`" in result
    assert result.count("onload") == 1


def test_unclosed_fence_is_closed_so_every_renderer_sees_code() -> None:
    result = sanitize_markdown("text\n````python\nprint('<script>')\n")
    assert result.endswith("\n````")
    assert "print('<script>')" in result


def test_fence_indented_four_spaces_is_prose() -> None:
    # Four spaces of indentation is not a fence in CommonMark: a paragraph continuation would render HTML.
    result = sanitize_markdown("Some text\n    ```\n    <script>alert(1)</script>\n    ```")
    assert "<script" not in result


def test_stray_angle_brackets_are_escaped_not_dropped() -> None:
    assert sanitize_markdown("if a<b and c <= d") == "if a&lt;b and c &lt;= d"


def test_nul_and_crlf_are_normalised() -> None:
    assert sanitize_markdown("a\r\nb\x00c") == "a\nb\ufffdc"


@pytest.mark.parametrize(
    ("value", "dangerous"),
    [
        ("javascript:alert(1)", True),
        ("  JAVASCRIPT:alert(1)", True),
        ("java\nscript:alert(1)", True),
        ("&#0000106avascript:alert(1)", True),
        ("data:text/html;base64,AAAA", True),
        ("vbscript:x", True),
        ("https://example.org/javascript:", False),
        ("/relative/path", False),
        ("mailto:someone@example.org", False),
    ],
)
def test_is_dangerous_url(value: str, dangerous: bool) -> None:
    assert is_dangerous_url(value) is dangerous


def test_no_event_handler_survives_anywhere_in_a_mixed_document() -> None:
    hostile = "\n".join(source for _, source, _, _ in CASES)
    result = sanitize_markdown(hostile)
    prose = re.sub(r"```.*?```", "", result, flags=re.S)
    assert not re.search(r"<[^>]*\son\w+\s*=", prose, flags=re.I)
    assert not re.search(r"<\s*(script|iframe|object|embed|style)\b", prose, flags=re.I)
