"""GitHub REST search: repositories (and discussed issues) for a topic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clients.http import (
    ConfigurationError,
    HttpResponse,
    QuotaExhausted,
    RateLimited,
    UpstreamError,
    UpstreamProtocolError,
    error_for_status,
)
from clients.research.parsing import collect_items, require_list
from clients.research.transport import SourceCall
from domain.research import ResearchItem, markdown_to_text, popularity_score

SOURCE = "github"
API_VERSION = "2022-11-28"
SECONDARY_DEFAULT_WAIT_S = 60.0  # the rate-limit doc: without retry-after, wait at least a minute
STARS_SATURATION = 100_000
ISSUE_ENGAGEMENT_SATURATION = 500


def headers(call: SourceCall) -> dict[str, str]:
    result = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
    if call.config.github_token:
        result["Authorization"] = f"Bearer {call.config.github_token}"
    return result


def classify(response: HttpResponse, now: float) -> UpstreamError | None:
    if response.status == 200:
        return None
    message = ""
    if response.body.lstrip()[:1] == b"{":
        try:
            message = str(response.json_object().get("message", ""))
        except UpstreamProtocolError:
            message = ""
    lowered = message.lower()
    remaining = response.headers.get("x-ratelimit-remaining")
    reset = _float(response.headers.get("x-ratelimit-reset"))
    retry_after = response.retry_after_s(now)
    if response.status in (403, 429):
        if "secondary rate limit" in lowered or "abuse detection" in lowered:
            if retry_after is None and remaining == "0" and reset:
                retry_after = max(0.0, reset - now)
            if retry_after is None:
                retry_after = SECONDARY_DEFAULT_WAIT_S
            return RateLimited(SOURCE, f"secondary rate limit: {message[:160]}", retry_after_s=retry_after)
        if remaining == "0" or "rate limit exceeded" in lowered:
            until = datetime.fromtimestamp(reset, UTC) if reset else None
            return QuotaExhausted(SOURCE, f"primary rate limit: {message[:160]}", until=until)
    if response.status == 401:
        return ConfigurationError(SOURCE, "GITHUB_TOKEN", f"HTTP 401 {message or 'Bad credentials'}")
    return error_for_status(response)


def note_remaining(call: SourceCall, response: HttpResponse) -> None:
    """A success that used the last request of the window: stop before the next one is refused."""
    reset = _float(response.headers.get("x-ratelimit-reset"))
    if response.headers.get("x-ratelimit-remaining") == "0" and reset:
        until = datetime.fromtimestamp(reset, UTC)
        reason = "search rate limit used up (x-ratelimit-remaining 0)"
        call.remember_limit(QuotaExhausted(SOURCE, reason, until=until))


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def repository_item(raw: dict[str, Any]) -> ResearchItem:
    topics = raw.get("topics") or []
    language = raw.get("language")
    stars = raw.get("stargazers_count") or 0
    description = raw.get("description") or ""
    summary = f"{description} ({stars:,} stars{', ' + language if language else ''})".strip()
    return ResearchItem.create(
        source=SOURCE,
        title=raw.get("full_name") or raw.get("name"),
        url=raw.get("html_url"),
        summary=summary,
        score=popularity_score(stars, STARS_SATURATION),
        published_at=raw.get("pushed_at") or raw.get("updated_at"),
        tags=[*(topics if isinstance(topics, list) else []), *([language] if language else [])],
    )


def issue_item(raw: dict[str, Any]) -> ResearchItem:
    reactions = raw.get("reactions")
    reaction_count = reactions.get("total_count", 0) if isinstance(reactions, dict) else 0
    engagement = (raw.get("comments") or 0) + (reaction_count or 0)
    labels = [label.get("name") for label in raw.get("labels") or [] if isinstance(label, dict)]
    kind = "pull request" if raw.get("pull_request") else "issue"
    return ResearchItem.create(
        source=SOURCE,
        title=raw.get("title"),
        url=raw.get("html_url"),
        summary=markdown_to_text(raw.get("body")) or f"GitHub {kind} ({raw.get('state', 'open')})",
        score=popularity_score(engagement, ISSUE_ENGAGEMENT_SATURATION),
        published_at=raw.get("updated_at") or raw.get("created_at"),
        tags=[*labels, kind],
    )


def parse_search(response: HttpResponse, kind: str) -> list[ResearchItem]:
    data = response.json_object()
    items = require_list(SOURCE, data, "items")
    builder = repository_item if kind == "repositories" else issue_item
    return collect_items(SOURCE, items, builder)


async def search(call: SourceCall, topic: str, limit: int) -> list[ResearchItem]:
    """Repositories first (most of the budget), then well-discussed issues for practical pitfalls."""
    base = call.config.github_api_url
    repo_count = max(1, (limit * 3 + 3) // 4)
    response = await call.get(
        f"{base}/search/repositories",
        params={"q": topic, "per_page": repo_count},
        headers=headers(call),
        classify=lambda r: classify(r, call.now()),
    )
    items = parse_search(response, "repositories")[:repo_count]
    note_remaining(call, response)
    issue_count = limit - len(items)
    if issue_count <= 0 or call.gates.blocked(SOURCE, call.now()) is not None:
        return items
    try:
        response = await call.get(
            f"{base}/search/issues",
            # Advanced search: the legacy /search/issues syntax is deprecated (upstream-apis.md §1).
            params={"q": f"{topic} is:issue comments:>3", "advanced_search": "true",
                    "per_page": issue_count},
            headers=headers(call),
            classify=lambda r: classify(r, call.now()),
        )
    except UpstreamError as exc:
        # The repositories already answered: a failing extra query must not lose them.
        call.remember_limit(exc)
        return items
    note_remaining(call, response)
    return items + parse_search(response, "issues")[:issue_count]
