"""YouTube Data API v3 search.list: tutorial videos for a topic (costs 100 quota units per call)."""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clients.http import (
    ConfigurationError,
    HttpResponse,
    QuotaExhausted,
    RateLimited,
    UpstreamError,
    UpstreamHTTPError,
    error_for_status,
)
from clients.research.parsing import collect_items, require_list
from clients.research.transport import SourceCall
from domain.research import ResearchItem, html_to_text, position_score

SOURCE = "youtube"
SETTING = "YOUTUBE_API_KEY"
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
THROTTLE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
KEY_REASONS = frozenset({"keyInvalid", "keyExpired", "forbidden", "accessNotConfigured", "ipRefererBlocked"})


def _pacific() -> timezone | ZoneInfo:
    try:
        return ZoneInfo("America/Los_Angeles")
    except ZoneInfoNotFoundError:
        # Without tzdata, UTC-8 is never early: during daylight time it is one hour late.
        return timezone(timedelta(hours=-8))


def next_pacific_midnight(now: float) -> datetime:
    """YouTube quotas reset at midnight Pacific time."""
    zone = _pacific()
    local = datetime.fromtimestamp(now, zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone) + timedelta(days=1)
    return midnight.astimezone(UTC)


def _reasons(error: dict[str, Any]) -> set[str]:
    found = {str(e.get("reason")) for e in error.get("errors") or [] if isinstance(e, dict)}
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("reason"):
            found.add(str(detail["reason"]))
    return found


def classify(response: HttpResponse, now: float) -> UpstreamError | None:
    if response.body.lstrip()[:1] != b"{":
        return None if response.status == 200 else error_for_status(response)
    data = response.json_object()
    error = data.get("error")
    if error is None:
        return None if response.status == 200 else error_for_status(response)
    if not isinstance(error, dict):
        return UpstreamHTTPError(SOURCE, response.status, str(error)[:200])
    reasons = _reasons(error)
    # The quota message embeds an HTML link ("your <a href=...>quota</a>"): strip it to text.
    message = html_to_text(str(error.get("message", "")), limit=300)
    if reasons & QUOTA_REASONS:
        return QuotaExhausted(SOURCE, f"quotaExceeded: {message[:160]}", until=next_pacific_midnight(now))
    if reasons & THROTTLE_REASONS:
        reason = f"{'/'.join(sorted(reasons))}: {message[:160]}"
        return RateLimited(SOURCE, reason, retry_after_s=response.retry_after_s(now))
    if reasons & KEY_REASONS or "API_KEY" in " ".join(reasons) or "API key not valid" in message:
        return ConfigurationError(SOURCE, SETTING, f"HTTP {response.status} {'/'.join(sorted(reasons))}")
    code = error.get("code")
    status = code if isinstance(code, int) else response.status
    return UpstreamHTTPError(SOURCE, status, message)


def video_item(raw: dict[str, Any]) -> ResearchItem:
    ident = raw.get("id") or {}
    snippet = raw.get("snippet") or {}
    video_id = ident.get("videoId") if isinstance(ident, dict) else None
    if not video_id:
        raise ValueError("search result without id.videoId")
    channel = html.unescape(snippet.get("channelTitle") or "") or None
    return ResearchItem.create(
        source=SOURCE,
        title=snippet.get("title"),
        url=f"https://www.youtube.com/watch?v={video_id}",
        # search.list entity-encodes descriptions like titles.
        summary=html.unescape(snippet.get("description") or "") or (f"Video by {channel}" if channel else ""),
        score=1.0,
        published_at=snippet.get("publishedAt"),
        tags=["video", *([channel] if channel else [])],
    )


def _is_video(record: Any) -> bool:
    ident = record.get("id") if isinstance(record, dict) else None
    return isinstance(ident, dict) and ident.get("kind") == "youtube#video"


def parse_search(response: HttpResponse) -> list[ResearchItem]:
    data = response.json_object()
    records = require_list(SOURCE, data, "items")
    videos = [r for r in records if _is_video(r)]
    if records and not videos:
        videos = records  # let collect_items report why none is usable
    items = collect_items(SOURCE, videos, video_item)
    # search.list has no view counts (that costs a videos.list call): rank order is the signal.
    return [replace(item, score=round(position_score(i, len(items)), 4)) for i, item in enumerate(items)]


async def search(call: SourceCall, topic: str, limit: int) -> list[ResearchItem]:
    key = call.config.youtube_api_key
    if not key:
        raise ConfigurationError(SOURCE, SETTING, "not configured")
    response = await call.get(
        f"{call.config.youtube_api_url}/search",
        params={"part": "snippet", "type": "video", "q": topic, "maxResults": min(50, limit),
                "safeSearch": "moderate", "relevanceLanguage": "en"},
        # The key goes in a header, not `?key=`, so it never lands in a URL (and thus in logs).
        headers={"Accept": "application/json", "X-Goog-Api-Key": key},
        classify=lambda r: classify(r, call.now()),
    )
    return parse_search(response)[:limit]
