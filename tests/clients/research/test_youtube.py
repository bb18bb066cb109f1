"""YouTube search.list client: parsing, not-configured skip, quota window until midnight Pacific."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clients.research.youtube import next_pacific_midnight
from tests.clients.research.conftest import SENTINELS, Runner
from tests.clients.research.upstream import Reply, ScriptedUpstream, fixture_reply

SEARCH = "/youtube/v3/search"
Upstream = tuple[ScriptedUpstream, str]


async def test_parses_videos_skips_channels_and_decodes_entities(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, fixture_reply("youtube_search_list.json"))

    items, outcome = await run("youtube", "python asyncio")

    assert outcome.status == "ok"
    assert [i.url for i in items] == ["https://www.youtube.com/watch?v=t2CEgPsws3U",
                                      "https://www.youtube.com/watch?v=Qb9s3UiMSTA"]
    assert items[0].title == "Python Asyncio Tutorial: Don't Block the Event Loop & More"
    assert items[1].title == '"asyncio" in 10 minutes'
    assert items[0].summary.endswith("we'll cover tasks, gather and timeouts.")
    assert items[0].published_at == "2024-03-11T15:00:09Z"
    assert items[0].score > items[1].score


async def test_key_in_header_and_documented_params(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, fixture_reply("youtube_search_list.json"))

    await run("youtube", "python asyncio", limit=5)

    request = scripted.last(SEARCH)
    assert request.headers["X-Goog-Api-Key"] == SENTINELS["YOUTUBE_API_KEY"]
    assert "key" not in request.query
    expected = {"part": "snippet", "type": "video", "q": "python asyncio", "maxResults": "5"}
    assert {k: request.query.get(k) for k in expected} == expected


async def test_without_key_the_source_is_skipped(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream

    items, outcome = await run("youtube", youtube_api_key=None)

    assert items == [] and outcome.status == "skipped"
    assert "YOUTUBE_API_KEY" in (outcome.error or "")
    assert scripted.count() == 0


async def test_quota_exceeded_stops_source_until_pacific_midnight(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, fixture_reply("youtube_quota_exceeded.json", status=403))

    _, outcome = await run("youtube")

    assert outcome.status == "rate_limited"
    assert "quotaExceeded: The request cannot be completed because you have exceeded your quota." in (
        outcome.error or ""
    )
    assert "2026-12-05T08:00:00+00:00" in (outcome.error or "")
    for _ in range(3):
        _, again = await run("youtube")
        assert again.status == "rate_limited"
    assert scripted.count(SEARCH) == 1  # 403 quotaExceeded is not retried, and blocks later calls

    run.fake_time.now = datetime(2026, 12, 5, 8, 0, 1, tzinfo=UTC).timestamp()
    scripted.on(SEARCH, fixture_reply("youtube_search_list.json"))
    _, next_day = await run("youtube")
    assert next_day.status == "ok"


@pytest.mark.parametrize(("now", "expected"), [
    (datetime(2026, 12, 4, 19, 0, tzinfo=UTC), datetime(2026, 12, 5, 8, 0, tzinfo=UTC)),  # PST
    (datetime(2026, 7, 1, 6, 59, tzinfo=UTC), datetime(2026, 7, 1, 7, 0, tzinfo=UTC)),  # PDT, 23:59 local
    (datetime(2026, 7, 1, 7, 0, tzinfo=UTC), datetime(2026, 7, 2, 7, 0, tzinfo=UTC)),
])
def test_next_pacific_midnight(now: datetime, expected: datetime) -> None:
    assert next_pacific_midnight(now.timestamp()) == expected


async def test_invalid_key_names_the_setting(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, Reply(status=400, body={"error": {
        "code": 400, "message": "API key not valid. Please pass a valid API key.",
        "errors": [{"message": "API key not valid. Please pass a valid API key.", "domain": "global",
                    "reason": "badRequest"}], "status": "INVALID_ARGUMENT"}}))

    _, outcome = await run("youtube")

    assert outcome.status == "error" and "YOUTUBE_API_KEY" in (outcome.error or "")
    assert SENTINELS["YOUTUBE_API_KEY"] not in (outcome.error or "")
