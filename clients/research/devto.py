"""Forem / Dev.to articles for a topic: /articles/search, falling back to /articles?tag= ."""

from __future__ import annotations

import re
from typing import Any

from clients.http import (
    HttpResponse,
    RateLimited,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamProtocolError,
    error_for_status,
)
from clients.research.parsing import collect_items
from clients.research.transport import SourceCall
from domain.research import ResearchItem, popularity_score

SOURCE = "devto"
REACTIONS_SATURATION = 1_000
THROTTLE_DEFAULT_WAIT_S = 1.0  # Rack::Attack allows 3 GET/s per IP
HEADERS = {"Accept": "application/vnd.forem.api-v1+json"}


def classify(response: HttpResponse, now: float) -> UpstreamError | None:
    if response.status == 200:
        return None
    if response.status == 429:
        # Rack::Attack's reply is text/plain "Retry later", never JSON.
        wait = response.retry_after_s(now)
        return RateLimited(SOURCE, response.excerpt() or "HTTP 429",
                           retry_after_s=THROTTLE_DEFAULT_WAIT_S if wait is None else wait)
    if response.status == 403 and not response.body.strip():
        return UpstreamHTTPError(
            SOURCE, 403, "", message="HTTP 403 with an empty body (Varnish refuses some User-Agents)"
        )
    if response.body.lstrip()[:1] == b"{":
        data = response.json_object()
        if "error" in data:
            return UpstreamHTTPError(SOURCE, response.status, str(data["error"])[:200])
    return error_for_status(response)


def _tags(raw: dict[str, Any]) -> list[str]:
    # List endpoints send tag_list as an array and tags as a string; single articles swap them.
    for key in ("tag_list", "tags"):
        value = raw.get(key)
        if isinstance(value, list):
            return [str(v) for v in value]
    for key in ("tag_list", "tags"):
        value = raw.get(key)
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
    return []


def article_item(raw: dict[str, Any]) -> ResearchItem:
    reactions = raw.get("public_reactions_count") or raw.get("positive_reactions_count") or 0
    engagement = reactions + (raw.get("comments_count") or 0)
    minutes = raw.get("reading_time_minutes")
    summary = raw.get("description") or ""
    if minutes:
        summary = f"{summary} ({minutes} min read)".strip()
    return ResearchItem.create(
        source=SOURCE,
        title=raw.get("title"),
        url=raw.get("url") or raw.get("canonical_url"),
        summary=summary,
        score=popularity_score(engagement, REACTIONS_SATURATION),
        published_at=raw.get("published_at") or raw.get("published_timestamp"),
        tags=_tags(raw),
    )


def parse_articles(response: HttpResponse) -> list[ResearchItem]:
    data = response.json()
    if isinstance(data, dict) and "error" in data:  # a 200 carrying Forem's error object
        status = data.get("status")
        raise UpstreamHTTPError(SOURCE, status if isinstance(status, int) else 200, str(data["error"])[:200])
    if not isinstance(data, list):
        raise UpstreamProtocolError(SOURCE, f"expected a JSON array of articles, got {type(data).__name__}")
    return collect_items(SOURCE, data, article_item)


def tag_for(topic: str) -> str:
    """Dev.to tags are lower-case alphanumerics: the first such word of the topic."""
    for word in topic.lower().split():
        tag = re.sub(r"[^a-z0-9]", "", word)
        if tag:
            return tag
    return ""


async def search(call: SourceCall, topic: str, limit: int) -> list[ResearchItem]:
    base = call.config.devto_api_url
    try:
        response = await call.get(
            f"{base}/articles/search",
            params={"q": topic, "per_page": limit, "page": 1},
            headers=HEADERS,
            classify=lambda r: classify(r, call.now()),
        )
    except UpstreamHTTPError as exc:
        # /articles/search is undocumented (upstream-apis.md §4); when it disappears, use tags.
        if exc.status != 404 or not tag_for(topic):
            raise
        response = await call.get(
            f"{base}/articles",
            params={"tag": tag_for(topic), "per_page": limit, "top": 365},
            headers=HEADERS,
            classify=lambda r: classify(r, call.now()),
        )
    return parse_articles(response)[:limit]
