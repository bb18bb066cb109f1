"""Research items from every source in one shape, and the pure rules that merge and rank them.

Plain data only (no I/O) so the orchestration's fan-in can rank per-source results itself.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ALL_SOURCES: tuple[str, ...] = ("github", "stackoverflow", "youtube", "devto", "docs")
OutcomeStatus = Literal["ok", "cached", "error", "skipped", "rate_limited"]
OUTCOME_STATUSES: frozenset[str] = frozenset({"ok", "cached", "error", "skipped", "rate_limited"})

MAX_TITLE_CHARS = 300
MAX_SUMMARY_CHARS = 600
MAX_TAGS = 10


class InvalidResearchItem(ValueError):
    """An upstream record that cannot become a ResearchItem (no title, non-http URL, ...)."""


# --------------------------------------------------------------------------------------------
# Text cleaning
# --------------------------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset({"p", "br", "li", "div", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td"})
    _SKIP = frozenset({"script", "style"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _trim(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.") + "…"


def plain_text(value: str | None, *, limit: int = MAX_SUMMARY_CHARS) -> str:
    """Literal text → one line, cut at a word boundary with an ellipsis. Nothing is decoded or parsed:
    "Vec<T>" and "a &amp; b" in a plain-text field are what the author wrote."""
    return _trim(value or "", limit)


def html_to_text(value: str | None, *, limit: int = MAX_SUMMARY_CHARS) -> str:
    """An HTML fragment (Stack Exchange bodies) → plain text without tags, scripts or entities."""
    if not value:
        return ""
    extractor = _TextExtractor()
    extractor.feed(value)
    extractor.close()
    return _trim("".join(extractor.parts), limit)


_HTML_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)


def markdown_to_text(value: str | None, *, limit: int = MAX_SUMMARY_CHARS) -> str:
    """Markdown (GitHub issue bodies) → one line; drops the HTML comments issue templates are full of."""
    return _trim(_HTML_COMMENT.sub(" ", value or ""), limit)


def clean_title(value: str | None) -> str:
    # Titles are entity-encoded by Stack Exchange and YouTube ("&#39;", "&amp;"), never real HTML.
    return " ".join(html.unescape(value or "").split())[:MAX_TITLE_CHARS]


def clean_url(value: str | None) -> str:
    """An absolute http(s) URL or InvalidResearchItem (javascript:, relative, ftp: ... are refused)."""
    url = (value or "").strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidResearchItem(f"not an absolute http(s) URL: {url[:100]!r}")
    if any(ch.isspace() for ch in url):
        raise InvalidResearchItem(f"URL contains whitespace: {url[:100]!r}")
    return url


def iso_timestamp(value: str | int | float | datetime | None) -> str | None:
    """Epoch seconds, ISO 8601 text or datetime → 'YYYY-MM-DDTHH:MM:SSZ' (UTC); None when unusable."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(float(value), UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clean_tags(values: Iterable[Any]) -> list[str]:
    tags: list[str] = []
    for value in values:
        tag = " ".join(str(value).split()).lower()
        if tag and tag not in tags:
            tags.append(tag[:50])
        if len(tags) == MAX_TAGS:
            break
    return tags


# --------------------------------------------------------------------------------------------
# Items and outcomes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResearchItem:
    source: str
    title: str
    url: str
    summary: str
    score: float  # the source's own quality signal, normalised to 0..1
    published_at: str | None = None
    tags: list[str] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        *,
        source: str,
        title: str | None,
        url: str | None,
        summary: str | None = None,
        score: float = 0.0,
        published_at: str | int | float | datetime | None = None,
        tags: Iterable[Any] = (),
        decode_title: bool = True,
    ) -> ResearchItem:
        """Build a normalised item from upstream values; InvalidResearchItem when unusable.

        `summary` must already be plain text (see html_to_text / markdown_to_text); the title's HTML
        entities are decoded unless `decode_title` is False (stored items are decoded already).
        """
        if source not in ALL_SOURCES:
            raise InvalidResearchItem(f"unknown source {source!r}")
        clean = clean_title(title) if decode_title else " ".join((title or "").split())[:MAX_TITLE_CHARS]
        if not clean:
            raise InvalidResearchItem("missing title")
        try:
            numeric = float(score)
        except (TypeError, ValueError):
            raise InvalidResearchItem(f"score is not a number: {score!r}") from None
        if not math.isfinite(numeric):
            numeric = 0.0
        return cls(
            source=source,
            title=clean,
            url=clean_url(url),
            summary=plain_text(summary),
            score=round(min(1.0, max(0.0, numeric)), 4),
            published_at=iso_timestamp(published_at),
            tags=clean_tags(tags),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "title": self.title,
            "url": self.url,
            "summary": self.summary,
            "score": self.score,
            "published_at": self.published_at,
            "tags": list(self.tags),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResearchItem:
        """Re-validates: cached or stored rows go through the same rules as fresh ones."""
        if not isinstance(data, Mapping):
            raise InvalidResearchItem(f"expected an object, got {type(data).__name__}")
        tags = data.get("tags") or []
        if not isinstance(tags, list):
            raise InvalidResearchItem("tags must be a list")
        return cls.create(
            source=str(data.get("source", "")),
            title=data.get("title"),
            url=data.get("url"),
            summary=data.get("summary"),
            score=data.get("score", 0.0),
            published_at=data.get("published_at"),
            tags=tags,
            decode_title=False,
        )


@dataclass(frozen=True)
class SourceOutcome:
    status: OutcomeStatus
    error: str | None = None
    items: int = 0
    latency_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "error": self.error, "items": self.items, "latency_ms": self.latency_ms
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourceOutcome:
        status = data.get("status")
        if status not in OUTCOME_STATUSES:
            raise ValueError(f"unknown research outcome status {status!r}")
        error = data.get("error")
        return cls(
            status=status,
            error=None if error is None else str(error),
            items=int(data.get("items", 0)),
            latency_ms=int(data.get("latency_ms", 0)),
        )


@dataclass(frozen=True)
class ResearchResult:
    items: list[ResearchItem]
    outcomes: dict[str, SourceOutcome]

    @property
    def answered(self) -> bool:
        """True when at least one source gave an answer (fresh or cached)."""
        return any(o.status in ("ok", "cached") for o in self.outcomes.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [item.to_dict() for item in self.items],
            "outcomes": {source: outcome.to_dict() for source, outcome in self.outcomes.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResearchResult:
        return cls(
            items=[ResearchItem.from_dict(item) for item in data.get("items", [])],
            outcomes={str(k): SourceOutcome.from_dict(v) for k, v in data.get("outcomes", {}).items()},
        )


# --------------------------------------------------------------------------------------------
# Ranking and de-duplication (pure)
# --------------------------------------------------------------------------------------------

_STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "in", "into", "is", "it", "of",
    "on", "or", "the", "to", "with", "what", "why", "when", "your", "you", "using", "use", "vs", "versus",
    "guide", "tutorial", "intro", "introduction",
})
_WORD = re.compile(r"[a-z0-9][a-z0-9+#]*")
_TRACKING_PARAMS = frozenset({"ref", "ref_src", "fbclid", "gclid"})

WEIGHT_MATCH = 0.7
WEIGHT_SOURCE = 0.2
WEIGHT_RECENCY = 0.1
RECENCY_HALF_LIFE_DAYS = 730.0
UNKNOWN_DATE_RECENCY = 0.3


def _stem(word: str) -> str:
    # Enough to match "hooks"/"hook" and "indexes"/"index" without a stemming library.
    for suffix in ("es", "s"):
        if len(word) > 4 and word.endswith(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def terms(text: str) -> set[str]:
    """Lower-cased, stemmed content words of `text`."""
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def normalize_url(url: str) -> str:
    """The identity of a link for de-duplication: scheme/host/trailing-slash/fragment/tracking agnostic."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.").removeprefix("m.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    path = parts.path.rstrip("/") or "/"
    query = urlencode(
        sorted(
            (k, v)
            for k, v in parse_qsl(parts.query)
            if not k.lower().startswith("utm_") and k.lower() not in _TRACKING_PARAMS
        )
    )
    return urlunsplit(("https", host, path, query, ""))


def relevance(topic_terms: set[str], item: ResearchItem, reference: datetime | None) -> float:
    """Term overlap (title > tags > summary) + the source's score + recency, in 0..1."""
    if topic_terms:
        title, tags, summary = terms(item.title), terms(" ".join(item.tags)), terms(item.summary)
        weights = [
            1.0 if t in title else 0.8 if t in tags else 0.5 if t in summary else 0.0 for t in topic_terms
        ]
        match = sum(weights) / len(topic_terms)
    else:
        match = 0.0
    recency = UNKNOWN_DATE_RECENCY
    if reference is not None and item.published_at:
        published = datetime.fromisoformat(item.published_at.replace("Z", "+00:00"))
        age_days = max(0.0, (reference - published).total_seconds() / 86400)
        recency = 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS)
    return WEIGHT_MATCH * match + WEIGHT_SOURCE * item.score + WEIGHT_RECENCY * recency


def rank_items(
    topic: str, items: Sequence[ResearchItem], *, now: datetime | None = None
) -> list[ResearchItem]:
    """De-duplicate by normalised URL (keeping the most relevant copy) and sort by relevance.

    `now` anchors recency; when omitted the newest item's date is used, so the result depends on
    the inputs only (the orchestration may call this during replay).
    """
    dated = [item.published_at for item in items if item.published_at]
    reference = now
    if reference is None and dated:
        reference = datetime.fromisoformat(max(dated).replace("Z", "+00:00"))
    if reference is not None and reference.tzinfo is None:
        reference = reference.replace(tzinfo=UTC)
    topic_terms = terms(topic)
    best: dict[str, tuple[float, int, ResearchItem]] = {}
    for position, item in enumerate(items):
        key = normalize_url(item.url)
        value = relevance(topic_terms, item, reference)
        kept = best.get(key)
        if kept is None or value > kept[0]:
            best[key] = (value, kept[1] if kept else position, item)
    # Ties keep input order so the ranking is stable and deterministic.
    ranked = sorted(best.values(), key=lambda entry: (-entry[0], entry[1]))
    return [item for _, _, item in ranked]


def popularity_score(count: float | int | None, saturation: float) -> float:
    """Log-scaled 0..1 popularity: `saturation` (e.g. 100k stars) maps to 1.0."""
    if not count or count <= 0:
        return 0.0
    return min(1.0, math.log10(1 + float(count)) / math.log10(1 + saturation))


def position_score(index: int, total: int) -> float:
    """1.0 for the upstream's first hit down to 0.5 for its last: for sources without a usable score."""
    if total <= 1:
        return 1.0
    return 1.0 - 0.5 * index / (total - 1)
