"""Run research sources (one, or all concurrently) and turn every failure into a per-source outcome."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from clients.http import (
    QuotaExhausted,
    RateLimited,
    RetryTiming,
    UpstreamError,
    redact,
)
from clients.research import devto, docs, github, stackexchange, youtube
from clients.research.cache import ResearchCache, normalize_query
from clients.research.config import ResearchConfig
from clients.research.gates import PROCESS_GATES, SourceGates
from clients.research.transport import SourceCall
from domain.research import (
    ALL_SOURCES,
    InvalidResearchItem,
    ResearchItem,
    ResearchResult,
    SourceOutcome,
    rank_items,
)

log = logging.getLogger(__name__)

Searcher = Callable[[SourceCall, str, int], Awaitable[list[ResearchItem]]]
SEARCHERS: dict[str, Searcher] = {
    "github": github.search,
    "stackoverflow": stackexchange.search,
    "youtube": youtube.search,
    "devto": devto.search,
    "docs": docs.search,
}
MAX_LIMIT = 50
MAX_TOPIC_CHARS = 200


def _check_topic(topic: str) -> str:
    cleaned = " ".join(topic.split())
    if not cleaned:
        raise ValueError("research topic is empty")
    if len(cleaned) > MAX_TOPIC_CHARS:
        raise ValueError(f"research topic is longer than {MAX_TOPIC_CHARS} characters")
    return cleaned


def _check_source(source: str) -> None:
    if source not in SEARCHERS:
        raise ValueError(f"unknown research source {source!r}; known: {', '.join(ALL_SOURCES)}")


def _not_configured(source: str, config: ResearchConfig) -> str | None:
    if source == "youtube" and not config.youtube_api_key:
        return "not configured: set YOUTUBE_API_KEY to enable YouTube research"
    return None


async def _from_cache(cache: ResearchCache, source: str, key: str) -> list[ResearchItem] | None:
    try:
        rows = await cache.get(source, key)
    except Exception as exc:  # a cache outage must not cost the research itself
        log.warning("research cache read failed for %s: %s", source, redact(str(exc))[:200])
        return None
    if rows is None:
        return None
    items: list[ResearchItem] = []
    for row in rows:
        try:
            items.append(ResearchItem.from_dict(row))
        except (InvalidResearchItem, TypeError, ValueError):
            log.warning("research cache row for %s is unusable; refreshing from the source", source)
            return None
    return items


async def _to_cache(cache: ResearchCache, source: str, key: str, items: list[ResearchItem]) -> None:
    try:
        await cache.put(source, key, [item.to_dict() for item in items])
    except Exception as exc:  # the items are still returned; the next call simply asks again
        log.warning("research cache write failed for %s: %s", source, redact(str(exc))[:200])


def _without_secrets(item: ResearchItem) -> ResearchItem:
    # Upstreams echo requests back in odd places; a key must never reach a lesson or the database.
    cleaned = {name: redact(getattr(item, name)) for name in ("title", "url", "summary")}
    if all(cleaned[name] == getattr(item, name) for name in cleaned):
        return item
    return replace(item, **cleaned)


async def search_source(
    source: str,
    topic: str,
    *,
    config: ResearchConfig,
    cache: ResearchCache | None = None,
    limit: int = 8,
    gates: SourceGates = PROCESS_GATES,
    clock: Callable[[], float] = time.time,
    timing: RetryTiming | None = None,
) -> tuple[list[ResearchItem], SourceOutcome]:
    """Search one source. Upstream failures come back as the outcome; only bad arguments raise."""
    _check_source(source)
    topic = _check_topic(topic)
    limit = max(1, min(MAX_LIMIT, limit))
    started = time.perf_counter()

    def outcome(status: str, error: str | None = None, items: int = 0) -> SourceOutcome:
        latency = int((time.perf_counter() - started) * 1000)
        cleaned = None if error is None else redact(error)
        return SourceOutcome(status=status, error=cleaned, items=items, latency_ms=latency)  # type: ignore[arg-type]

    key = normalize_query(topic)
    if cache is not None:
        cached = await _from_cache(cache, source, key)
        if cached is not None:
            return cached[:limit], outcome("cached", items=len(cached[:limit]))

    reason = _not_configured(source, config)
    if reason is not None:
        return [], outcome("skipped", reason)

    block = gates.blocked(source, clock())
    if block is not None:
        until = datetime.fromtimestamp(block.until, UTC).isoformat(timespec="seconds")
        return [], outcome("rate_limited", f"stopped until {until}: {block.reason}")

    call = SourceCall(source=source, config=config, gates=gates, clock=clock, timing=timing or RetryTiming())
    try:
        async with asyncio.timeout(config.source_budget_s):
            items = await SEARCHERS[source](call, topic, limit)
    except (QuotaExhausted, RateLimited) as exc:
        until = call.remember_limit(exc)
        when = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds") if until else "later"
        return [], outcome("rate_limited", f"{exc.message} (source stopped until {when})")
    except UpstreamError as exc:  # ConfigurationError included: its message names the setting
        return [], outcome("error", exc.message)
    except TimeoutError:
        return [], outcome("error", f"no answer within the source budget of {config.source_budget_s:g}s")
    except Exception as exc:  # a parser bug must cost one source, never the whole research
        # Formatted and redacted here: a traceback can quote values that carry a key.
        log.error("research source %s failed unexpectedly:\n%s", source, redact(traceback.format_exc()))
        return [], outcome("error", f"unexpected {type(exc).__name__}: {str(exc)[:200]}")

    items = [_without_secrets(item) for item in items]
    if cache is not None and items:
        await _to_cache(cache, source, key, items)
    return items, outcome("ok", items=len(items))


async def gather_research(
    topic: str,
    *,
    config: ResearchConfig,
    sources: Sequence[str] = ALL_SOURCES,
    cache: ResearchCache | None = None,
    limit_per_source: int = 8,
    gates: SourceGates = PROCESS_GATES,
    clock: Callable[[], float] = time.time,
    timing: RetryTiming | None = None,
) -> ResearchResult:
    """All `sources` concurrently; items de-duplicated and ranked, one outcome per source."""
    topic = _check_topic(topic)
    wanted = list(dict.fromkeys(sources))
    for source in wanted:
        _check_source(source)
    results = await asyncio.gather(
        *(
            search_source(source, topic, config=config, cache=cache, limit=limit_per_source,
                          gates=gates, clock=clock, timing=timing)
            for source in wanted
        )
    )
    items = [item for found, _ in results for item in found]
    outcomes = {source: result[1] for source, result in zip(wanted, results, strict=True)}
    return ResearchResult(items=rank_items(topic, items, now=datetime.fromtimestamp(clock(), UTC)),
                          outcomes=outcomes)
