"""Sanitize AI-generated lesson markdown before it is stored and rendered by the web app.

Removes active content: <script>, <style>, <iframe>, <object>, <embed> (and similar) elements, `on*=`
handlers and `style` attributes, and `javascript:` / `vbscript:` / `data:` destinations in markdown links,
images, autolinks, reference definitions and HTML attributes, including case-, whitespace- and
entity-obfuscated spellings. Everything else is kept.

Code is content, not markup: fenced code blocks and inline code spans are kept byte for byte (a lesson on
HTML must be able to show `<script>`); every CommonMark renderer escapes their content. To make sure the
renderer sees the same code blocks we do, fences follow the CommonMark rules (at most 3 spaces of
indentation; no fence inside a raw HTML block, where a renderer would pass the lines through as HTML) and
an unclosed fence is closed. Anything we are not sure is code is treated as prose and sanitized.

In prose, a `<` that does not start a well-formed, allowed tag or a safe autolink is written as `&lt;`:
renderers display `&lt;` as `<`, so text like `a < b` looks the same, and a tag we could not parse cannot
reach the browser as markup. The function is pure and idempotent (its result is a fixed point).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

# Elements removed together with their content (when closed), or as a lone tag (when not).
_DROP_WITH_CONTENT = frozenset(
    {
        "script",
        "style",
        "iframe",
        "object",
        "embed",
        "applet",
        "noscript",
        "noembed",
        "noframes",
        "template",
        "xmp",
        "plaintext",
        "textarea",
        "title",
        "frameset",
        "frame",
        "svg",
        "math",
    }
)
# Elements whose tags are removed but whose content is kept as text.
_DROP_TAG_ONLY = frozenset(
    {
        "base",
        "link",
        "meta",
        "form",
        "input",
        "button",
        "select",
        "option",
        "param",
        "portal",
        "html",
        "head",
        "body",
        "isindex",
        "keygen",
    }
)
_DROP_ATTRIBUTES = frozenset({"style", "srcdoc", "formaction", "action", "xmlns", "ping"})
_DANGEROUS_SCHEMES = ("javascript", "vbscript", "livescript", "data")

_NUL = "\x00"
_PLACEHOLDER = re.compile(r"\x00([CT])(\d+)\x00")

_FENCE_OPEN = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
# Wider than CommonMark on purpose: a `<div>` inside a blockquote or list item (any indentation) opens an
# HTML block there, so its lines must not be trusted as code either.
_HTML_BLOCK_START = re.compile(r"^[ \t>]*(?:(?:[-+*]|\d{1,9}[.)])[ \t]+[ \t>]*)*<[A-Za-z/!?]")
_HTML_BLOCK_ENDS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (
        re.compile(r"^[^<]*<(?:script|pre|style|textarea)(?:\s|>|$)", re.I),
        re.compile(r"</(?:script|pre|style|textarea)>", re.I),
    ),
    (re.compile(r"^[^<]*<!--"), re.compile(r"-->")),
    (re.compile(r"^[^<]*<\?"), re.compile(r"\?>")),
    (re.compile(r"^[^<]*<![A-Za-z]"), re.compile(r">")),
    (re.compile(r"^[^<]*<!\[CDATA\["), re.compile(r"\]\]>")),
)

_ATTRIBUTE = re.compile(
    r"""\s+([A-Za-z_:][A-Za-z0-9_.:-]*)(?:\s*=\s*("[^"\x00]*"|'[^'\x00]*'|[^\s"'=<>`\x00]+))?"""
)
_TAG = re.compile(
    r"""<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z_:][A-Za-z0-9_.:-]*"""
    r"""(?:\s*=\s*(?:"[^"\x00]*"|'[^'\x00]*'|[^\s"'=<>`\x00]+))?)*)\s*(/?)>"""
)
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.\-]{1,31}):([^\s<>\x00]*)>")
_EMAIL_AUTOLINK = re.compile(
    r"<[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*>"
)

_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_URL_IGNORED = re.compile(r"[\t\n\r]")
_SCHEME_AT_START = re.compile(r"^[\x00-\x20]*(?:" + "|".join(_DANGEROUS_SCHEMES) + r")[\x00-\x20]*:", re.I)
_SCHEME_ANYWHERE = re.compile(
    r"(?:^|[\s,;'\"(=`])[\x00-\x20]*(?:" + "|".join(_DANGEROUS_SCHEMES) + r")[\x00-\x20]*:", re.I
)

_LINK_TEXT = r"(?:[^\[\]\\]|\\.|\[(?:[^\[\]\\]|\\.)*\])*"
_LINK_DEST = r"(?:<[^<>\n]*>|(?:[^\s()\\]|\\.|\((?:[^\s()\\]|\\.)*\))*)"
_LINK_TITLE = r"""(?:\s+(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\((?:[^()\\]|\\.)*\)))?"""
_INLINE_LINK = re.compile(
    r"(!?)\[(" + _LINK_TEXT + r")\]\(\s*(" + _LINK_DEST + r")" + _LINK_TITLE + r"\s*\)", re.S
)
# Catches what the precise pattern cannot parse (odd nesting): any `](destination` at all.
_ANY_LINK_DEST = re.compile(r"\]\(\s*(<[^>\n]*>|[^)]{0,2000})")
_REFERENCE_DEFINITION = re.compile(
    r"^ {0,3}\[(?:[^\[\]\\]|\\.)+\]:[ \t]*\n?[ \t]*(<[^<>\n]*>|\S+)[^\n]*(?:\n[ \t]+[\"'(][^\n]*)?$", re.M
)


_MAX_PASSES = 6


def sanitize_markdown(markdown: str) -> str:
    """Return `markdown` without active content; code blocks and code spans are kept as they are.

    Removing a tag can change how a renderer splits blocks (`<script>…</script><div>` followed by a fence:
    once the script is gone, the line opens an HTML block that swallows the fence). So we sanitize until
    the text is a fixed point, i.e. our own reading of the result already finds nothing to remove.
    """
    text = markdown.replace("\r\n", "\n").replace("\r", "\n").replace(_NUL, "\ufffd")
    for _ in range(_MAX_PASSES):
        cleaned = _sanitize_once(text)
        if cleaned == text:
            return cleaned
        text = cleaned
    # Not reached with real input; if it ever is, give up on markup rather than risk it.
    return text.replace("<", "&lt;")


def _sanitize_once(text: str) -> str:
    out: list[str] = []
    for kind, chunk in _split_blocks(text.split("\n")):
        if kind == "fence":
            out.append(chunk)
        else:
            out.append(_sanitize_prose(chunk, keep_code_spans=(kind == "prose")))
    return "\n".join(out)


def is_dangerous_url(value: str, *, anywhere: bool = False) -> bool:
    """True when `value` (a link destination or attribute value) would run script or embed data.

    Decodes markdown backslash escapes and HTML entities and drops the tab/CR/LF characters browsers strip
    from URLs, so `&#106;ava&Tab;script:` and `JaVaScRiPt\\:` are caught.
    """
    decoded = html.unescape(_MD_ESCAPE.sub(r"\1", value))
    decoded = _URL_IGNORED.sub("", decoded)
    pattern = _SCHEME_ANYWHERE if anywhere else _SCHEME_AT_START
    return bool(pattern.search(decoded))


# ---------------------------------------------------------------------------------------------------------
# Block level: fenced code vs raw HTML blocks vs ordinary prose.


def _split_blocks(lines: list[str]) -> list[tuple[str, str]]:
    """Group lines into ("fence" | "html" | "prose", text) segments, in order."""
    segments: list[tuple[str, list[str]]] = []

    def add(kind: str, line: str) -> None:
        if segments and segments[-1][0] == kind:
            segments[-1][1].append(line)
        else:
            segments.append((kind, [line]))

    fence: tuple[str, int] | None = None  # (fence character, length) while inside a fence
    html_end: re.Pattern[str] | None = None  # end condition of the raw HTML block we are in
    in_html_to_blank = False
    for line in lines:
        if fence is not None:
            char, length = fence
            add("fence", line)
            if re.match(rf"^ {{0,3}}{re.escape(char)}{{{length},}}[ \t]*$", line):
                fence = None
            continue
        if html_end is not None:
            add("html", line)
            if html_end.search(line):
                html_end = None
            continue
        if in_html_to_blank:
            if line.strip():
                add("html", line)
                continue
            in_html_to_blank = False
        opening = _FENCE_OPEN.match(line)
        if opening and not (opening.group(2)[0] == "`" and "`" in opening.group(3)):
            fence = (opening.group(2)[0], len(opening.group(2)))
            add("fence", line)
            continue
        if _HTML_BLOCK_START.match(line):
            add("html", line)
            for start, end in _HTML_BLOCK_ENDS:
                started = start.match(line)
                if started:
                    # The end marker may sit on the opening line itself.
                    html_end = None if end.search(line, started.end()) else end
                    break
            else:
                in_html_to_blank = True
            continue
        add("prose", line)
    if fence is not None:
        # An unclosed fence runs to the end of the document in CommonMark but not in every renderer: close it
        # so that its content is code everywhere.
        char, length = fence
        add("fence", char * length)
    return [(kind, "\n".join(block)) for kind, block in segments]


# ---------------------------------------------------------------------------------------------------------
# Inline level.


def _sanitize_prose(text: str, *, keep_code_spans: bool) -> str:
    protected: list[str] = []

    def protect(kind: str, value: str) -> str:
        protected.append(value)
        return f"{_NUL}{kind}{len(protected) - 1}{_NUL}"

    if keep_code_spans:
        text = _protect_code_spans(text, lambda span: protect("C", span))
    text = _sanitize_html(text, lambda tag: protect("T", tag))
    text = _REFERENCE_DEFINITION.sub(lambda m: "" if _dangerous_destination(m.group(1)) else m.group(0), text)
    text = _INLINE_LINK.sub(_unwrap_dangerous_link, text)
    text = _ANY_LINK_DEST.sub(lambda m: "](#" if _dangerous_destination(m.group(1)) else m.group(0), text)
    return _PLACEHOLDER.sub(lambda m: protected[int(m.group(2))], text)


def _protect_code_spans(text: str, protect: Callable[[str], str]) -> str:
    """Replace CommonMark code spans by placeholders, honouring backslash-escaped backticks outside spans."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            out.append(text[i : i + 2])
            i += 2
            continue
        if ch != "`":
            out.append(ch)
            i += 1
            continue
        run_end = i
        while run_end < n and text[run_end] == "`":
            run_end += 1
        run = run_end - i
        closer = _find_closing_backticks(text, run_end, run)
        if closer is None:
            out.append(text[i:run_end])
            i = run_end
            continue
        out.append(protect(text[i : closer + run]))
        i = closer + run
    return "".join(out)


def _find_closing_backticks(text: str, start: int, run: int) -> int | None:
    # CommonMark lets a code span continue on the next line, but block structure (an HTML block opened by a
    # `<div>` line, a list item, a blockquote) takes precedence over it; within one line it cannot.
    line_end = text.find("\n", start)
    pattern = re.compile(r"(?<!`)" + "`" * run + r"(?!`)")
    match = pattern.search(text, start, len(text) if line_end < 0 else line_end)
    return match.start() if match else None


def _sanitize_html(text: str, protect: Callable[[str], str]) -> str:
    """Rewrite every `<` in prose: safe tags rebuilt, dangerous elements removed, the rest escaped."""
    out: list[str] = []
    i = 0
    n = len(text)
    # Searches for a closer that once failed cannot succeed later: remember that (keeps hostile input linear).
    no_closer: set[str] = set()
    while i < n:
        lt = text.find("<", i)
        if lt < 0:
            out.append(text[i:])
            break
        out.append(text[i:lt])
        if text.startswith("<!--", lt) and "-->" not in no_closer:
            close = text.find("-->", lt + 4)
            if close >= 0:
                i = close + 3
                continue
            no_closer.add("-->")
        autolink = _AUTOLINK.match(text, lt)
        if autolink:
            if not (
                _dangerous_destination(autolink.group(0)[1:-1])
                or autolink.group(1).lower() in _DANGEROUS_SCHEMES
            ):
                out.append(protect(autolink.group(0)))
            i = autolink.end()
            continue
        email = _EMAIL_AUTOLINK.match(text, lt)
        if email:
            out.append(protect(email.group(0)))
            i = email.end()
            continue
        tag = _TAG.match(text, lt)
        if tag is None:
            out.append("&lt;")
            i = lt + 1
            continue
        closing, name, attributes = tag.group(1) == "/", tag.group(2).lower(), tag.group(3)
        i = tag.end()
        if name in _DROP_WITH_CONTENT:
            if not closing and tag.group(4) != "/" and name not in no_closer:
                end = re.compile(rf"</\s*{re.escape(name)}\s*>", re.I).search(text, i)
                if end is not None:
                    i = end.end()
                else:
                    no_closer.add(name)
            continue
        if name in _DROP_TAG_ONLY:
            continue
        out.append(protect(_rebuild_tag(name, closing, attributes, tag.group(4) == "/")))
    return "".join(out)


def _rebuild_tag(name: str, closing: bool, attributes: str, self_closing: bool) -> str:
    if closing:
        return f"</{name}>"
    kept: list[str] = []
    for match in _ATTRIBUTE.finditer(attributes):
        attr, raw = match.group(1), match.group(2)
        lowered = attr.lower()
        if lowered.startswith("on") or lowered in _DROP_ATTRIBUTES:
            continue
        if raw is None:
            kept.append(f" {attr}")
            continue
        value = raw[1:-1] if raw[0] in "\"'" else raw
        if is_dangerous_url(value, anywhere=True):
            continue
        kept.append(f' {attr}="{value.replace(chr(34), "&quot;")}"')
    return f"<{name}{''.join(kept)}{' /' if self_closing else ''}>"


def _dangerous_destination(destination: str) -> bool:
    value = destination.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    # Protected fragments inside a destination are not URL text; judge what is left around them.
    return is_dangerous_url(_PLACEHOLDER.sub("", value))


def _unwrap_dangerous_link(match: re.Match[str]) -> str:
    if not _dangerous_destination(match.group(3)):
        return match.group(0)
    # Keep what the reader was meant to see: the link text, or the image's alt text.
    return match.group(2)
