"""Official documentation search: MDN (default) or Read the Docs, chosen by DOCS_SEARCH_URL's shape."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from clients.http import HttpResponse, RateLimited, UpstreamError, UpstreamHTTPError, error_for_status
from clients.research.parsing import collect_items, require_list
from clients.research.transport import SourceCall
from domain.research import ResearchItem, plain_text, position_score

SOURCE = "docs"
# mdn_url is site-relative; it points at the public site whichever host served the search.
MDN_SITE = "https://developer.mozilla.org"


def classify(response: HttpResponse, now: float) -> UpstreamError | None:
    if response.status == 200:
        return None
    if response.status == 429:  # a CDN in front of the search API: JSON or not, it is throttling
        reason = f"HTTP 429: {response.excerpt()[:120]}"
        return RateLimited(SOURCE, reason, retry_after_s=response.retry_after_s(now))
    if response.body.lstrip()[:1] == b"{":
        data = response.json_object()
        errors = data.get("errors")
        if isinstance(errors, dict):  # MDN 400: {"errors": {"page": [{"message", "code"}]}}
            first = next(iter(errors.items()), ("?", [{}]))
            detail = first[1][0].get("message", "") if isinstance(first[1], list) and first[1] else ""
            return UpstreamHTTPError(SOURCE, response.status, f"{first[0]}: {detail}")
        if "error" in data or "detail" in data:  # MDN 500 / Read the Docs errors
            message = data.get("message") or data.get("error") or data.get("detail")
            return UpstreamHTTPError(SOURCE, response.status, str(message)[:200])
    return error_for_status(response)


# ---------------------------------------------------------------- MDN


def mdn_item(raw: dict[str, Any], top_score: float) -> ResearchItem:
    path = raw.get("mdn_url")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"mdn_url is not a site path: {path!r}")
    slug = str(raw.get("slug") or "")
    score = raw.get("score")
    return ResearchItem.create(
        source=SOURCE,
        title=raw.get("title"),
        url=f"{MDN_SITE}{path}",
        summary=raw.get("summary"),
        score=(float(score) / top_score) if isinstance(score, int | float) and top_score > 0 else 0.5,
        published_at=None,
        tags=["mdn", *[part for part in slug.split("/")[:2] if part]],
    )


def parse_mdn(response: HttpResponse) -> list[ResearchItem]:
    data = response.json_object()
    documents = require_list(SOURCE, data, "documents")
    scores = [d.get("score") for d in documents if isinstance(d, dict)]
    numeric = [float(s) for s in scores if isinstance(s, int | float)]
    top = max(numeric) if numeric else 0.0
    return collect_items(SOURCE, documents, lambda d: mdn_item(d, top))


async def search_mdn(call: SourceCall, topic: str, limit: int) -> list[ResearchItem]:
    response = await call.get(
        call.config.docs_search_url,
        # size is fixed at 10 by the server; page must stay within 1..10.
        params={"q": topic, "locale": "en-US", "sort": "best", "page": 1},
        headers={"Accept": "application/json"},
        classify=lambda r: classify(r, call.now()),
    )
    return parse_mdn(response)[:limit]


# ---------------------------------------------------------------- Read the Docs


def readthedocs_item(raw: dict[str, Any]) -> ResearchItem:
    domain = str(raw.get("domain") or "").rstrip("/")
    path = str(raw.get("path") or "")
    blocks = [b for b in raw.get("blocks") or [] if isinstance(b, dict)]
    first = blocks[0] if blocks else {}
    anchor = f"#{first['id']}" if first.get("id") else ""
    project = raw.get("project") or {}
    project_slug = project.get("slug") if isinstance(project, dict) else None
    # Block content is plain text; only `highlights` are HTML-escaped.
    summary = " ".join(plain_text(str(b.get("content") or ""), limit=300) for b in blocks[:2])
    return ResearchItem.create(
        source=SOURCE,
        title=raw.get("title"),
        url=f"{domain}{path}{anchor}" if domain and path else None,
        summary=summary,
        score=1.0,
        published_at=None,
        tags=["readthedocs", *([project_slug] if project_slug else [])],
    )


def parse_readthedocs(response: HttpResponse) -> list[ResearchItem]:
    data = response.json_object()
    items = collect_items(SOURCE, require_list(SOURCE, data, "results"), readthedocs_item)
    return [replace(item, score=round(position_score(i, len(items)), 4)) for i, item in enumerate(items)]


async def search_readthedocs(call: SourceCall, topic: str, limit: int) -> list[ResearchItem]:
    response = await call.get(
        f"{call.config.docs_search_url.rstrip('/')}/",
        params={"q": topic, "page_size": limit},
        headers={"Accept": "application/json"},
        classify=lambda r: classify(r, call.now()),
    )
    return parse_readthedocs(response)[:limit]


async def search(call: SourceCall, topic: str, limit: int) -> list[ResearchItem]:
    if call.config.docs_kind == "readthedocs":
        return await search_readthedocs(call, topic, limit)
    return await search_mdn(call, topic, limit)
