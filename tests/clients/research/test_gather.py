"""gather_research / search_source: bad input never escapes, caching, secrets, timeouts, fan-in."""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import replace

import pytest

from clients.http import RetryPolicy
from clients.research import InMemoryResearchCache, ResearchItem, SourceGates, gather_research
from tests.clients.research.conftest import SENTINELS, FakeTime, Runner, make_config
from tests.clients.research.upstream import Reply, ScriptedUpstream, fixture_reply

Upstream = tuple[ScriptedUpstream, str]

PRIMARY = {
    "github": "/github/search/repositories",
    "stackoverflow": "/stackexchange/2.3/search/advanced",
    "youtube": "/youtube/v3/search",
    "devto": "/devto/api/articles/search",
    "docs": "/mdn/api/v1/search",
}
GOOD = {
    "github": fixture_reply("github_search_repositories.json"),
    "stackoverflow": fixture_reply("stackexchange_search_advanced.json", gzip=True),
    "youtube": fixture_reply("youtube_search_list.json"),
    "devto": fixture_reply("devto_articles.json"),
    "docs": fixture_reply("mdn_search.json"),
}
# The body of a 200 that carries an error instead of data, and what the outcome must say.
ERROR_IN_200 = {
    "github": ({"message": "Server Error"}, "Server Error"),
    "stackoverflow": ({"error_id": 400, "error_name": "bad_parameter", "error_message": "q is invalid"},
                      "bad_parameter"),
    "youtube": ({"error": {"code": 400, "message": "Invalid value", "errors": [{"reason": "badValue"}]}},
                "Invalid value"),
    "devto": ({"error": "not found", "status": 404}, "not found"),
    "docs": ({"errors": {"q": [{"message": "This field is required.", "code": "required"}]}},
             "This field is required."),
}
RECORDS_WITHOUT_FIELDS = {
    "github": {"total_count": 1, "incomplete_results": False, "items": [{"id": 1, "name": "x"}]},
    "stackoverflow": {"items": [{"question_id": 1, "score": 3}], "has_more": False, "quota_remaining": 9},
    "youtube": {"items": [{"id": {"kind": "youtube#video"}, "snippet": {}}]},
    "devto": [{"id": 1, "title": "no url here"}],
    "docs": {"documents": [{"title": "no mdn_url"}], "metadata": {}},
}
_MANY = {"items": [{"title": f"question {i}", "n": i * 7919} for i in range(500)]}
_FULL_GZIP = gzip.compress(json.dumps(_MANY).encode())
TRUNCATED = _FULL_GZIP[: len(_FULL_GZIP) // 2]


def bad_replies(source: str) -> dict[str, tuple[Reply, str]]:
    return {
        "html": (Reply(body="<!DOCTYPE html><title>Oops</title>", content_type="text/html"), "HTML"),
        "truncated gzip": (Reply(body=TRUNCATED, headers={"Content-Encoding": "gzip"}), "truncated gzip"),
        "200 with error body": (Reply(body=ERROR_IN_200[source][0]), ERROR_IN_200[source][1]),
        "huge body": (Reply(body=b"[" + b" " * (3 * 1024 * 1024) + b"]"), "exceeds the 2097152-byte limit"),
        "invalid utf-8": (Reply(body=b'{"items": ["\xc3\x28"]}'), "not valid UTF-8"),
        "missing fields": (Reply(body=RECORDS_WITHOUT_FIELDS[source]), "none of the 1 records is usable"),
        "wrong top-level type": (Reply(body="42"), "expected"),
    }


CASES = [(source, kind) for source in PRIMARY for kind in bad_replies(source)]


@pytest.mark.parametrize(("source", "kind"), CASES, ids=[f"{s}-{k}" for s, k in CASES])
async def test_bad_input_becomes_a_clear_error_outcome(upstream: Upstream, run: Runner, source: str,
                                                       kind: str) -> None:
    scripted, _ = upstream
    reply, fragment = bad_replies(source)[kind]
    scripted.on(PRIMARY[source], reply)

    items, outcome = await run(source)

    assert items == []
    assert outcome.status == "error", outcome
    assert outcome.error and fragment in outcome.error


async def test_gather_never_raises_and_reports_every_source(upstream: Upstream, fake_time: FakeTime) -> None:
    scripted, base = upstream
    scripted.on(PRIMARY["github"], Reply(body="<html>maintenance</html>", content_type="text/html"))
    scripted.on(PRIMARY["stackoverflow"], GOOD["stackoverflow"])
    scripted.on("/stackexchange/2.3/questions/19059580/answers", Reply(body={"items": []}, gzip=True))
    scripted.on(PRIMARY["devto"], GOOD["devto"])
    scripted.on(PRIMARY["docs"], GOOD["docs"])

    result = await gather_research(
        "node require", config=make_config(base, youtube_api_key=None), gates=SourceGates(),
        clock=fake_time.clock, timing=fake_time.timing(),
    )

    statuses = {source: outcome.status for source, outcome in result.outcomes.items()}
    assert statuses == {"github": "error", "stackoverflow": "ok", "youtube": "skipped", "devto": "ok",
                        "docs": "ok"}
    assert {item.source for item in result.items} == {"stackoverflow", "devto", "docs"}
    assert result.answered
    # Ranked: the Stack Overflow question mentions both topic words in its title.
    assert result.items[0].source == "stackoverflow"
    assert result.to_dict()["outcomes"]["github"]["error"].startswith("HTTP 200 returned HTML")


async def test_arguments_are_validated(upstream: Upstream) -> None:
    _, base = upstream
    config = make_config(base)
    with pytest.raises(ValueError, match="unknown research source 'reddit'"):
        await gather_research("python", config=config, sources=["github", "reddit"])
    with pytest.raises(ValueError, match="topic is empty"):
        await gather_research("   ", config=config)


async def test_cache_hit_skips_the_request(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(PRIMARY["docs"], GOOD["docs"])
    cache = InMemoryResearchCache()

    fresh, first = await run("docs", "Fetch  API!", cache=cache)
    cached, second = await run("docs", "fetch api", cache=cache)

    assert (first.status, second.status) == ("ok", "cached")
    assert cached == fresh and scripted.count() == 1
    assert ("docs", "fetch api") in cache.entries


async def test_unusable_cache_rows_are_refreshed(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(PRIMARY["docs"], GOOD["docs"])
    cache = InMemoryResearchCache()
    await cache.put("docs", "fetch api", [{"source": "docs", "title": "x", "url": "javascript:alert(1)"}])

    items, outcome = await run("docs", "fetch api", cache=cache)

    assert outcome.status == "ok" and items and scripted.count() == 1


class BrokenCache:
    async def get(self, source: str, query_key: str) -> list[dict] | None:
        raise ConnectionError(f"database down (password {SENTINELS['GITHUB_TOKEN']})")

    async def put(self, source: str, query_key: str, items: list[dict]) -> None:
        raise ConnectionError("database down")


async def test_secrets_never_reach_outcomes_items_or_logs(upstream: Upstream, run: Runner,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    scripted, _ = upstream
    leak = " ".join(SENTINELS.values())
    scripted.on(PRIMARY["github"], Reply(status=401, body={"message": f"Bad credentials {leak}"}))
    scripted.on(PRIMARY["stackoverflow"], Reply(status=400, gzip=True, body={
        "error_id": 402, "error_name": "invalid_access_token", "error_message": leak}))
    scripted.on(PRIMARY["youtube"], Reply(status=500, body=f"<html>{leak}</html>", content_type="text/html"))
    scripted.on(PRIMARY["devto"], Reply(status=418, body=leak, content_type="text/plain"))
    scripted.on(PRIMARY["docs"], Reply(body={"documents": [{"mdn_url": "/en-US/docs/x", "title": leak,
                                                            "summary": "s", "score": 1}]}))

    with caplog.at_level(logging.DEBUG):
        results = [await run(source, cache=BrokenCache()) for source in PRIMARY]

    rendered = json.dumps([[i.to_dict() for i in items] + [outcome.to_dict()] for items, outcome in results])
    assert "***" in rendered
    for secret in SENTINELS.values():
        assert secret not in rendered
        assert secret not in caplog.text
    assert "database down" in caplog.text  # the cache failure was logged, redacted
    assert [o.status for _, o in results] == ["error", "error", "error", "error", "ok"]


async def test_timeouts_are_retried_then_reported(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(PRIMARY["docs"], Reply(hang=True))

    items, outcome = await run("docs", request_timeout_s=0.1,
                               retry=RetryPolicy(max_attempts=2, base_delay_s=1.0, budget_s=10))

    assert items == [] and outcome.status == "error"
    assert "no complete response within 0.1s" in (outcome.error or "")
    assert scripted.count() == 2 and run.fake_time.sleeps == [0.5]


async def test_source_budget_bounds_a_slow_source(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(PRIMARY["docs"], Reply(hang=True))

    _, outcome = await run("docs", request_timeout_s=30.0, source_budget_s=0.2)

    assert outcome.status == "error" and "source budget of 0.2s" in (outcome.error or "")


async def test_unexpected_parser_failure_costs_only_that_source(
    upstream: Upstream, run: Runner, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from clients.research import gather

    async def exploding(call: object, topic: str, limit: int) -> list[ResearchItem]:
        raise KeyError(f"surprise {SENTINELS['YOUTUBE_API_KEY']}")

    monkeypatch.setitem(gather.SEARCHERS, "docs", exploding)  # stands in for a parser bug
    with caplog.at_level(logging.ERROR):
        _, outcome = await run("docs")
    assert outcome.status == "error" and "unexpected KeyError" in (outcome.error or "")
    assert "Traceback" in caplog.text and "surprise ***" in caplog.text
    assert SENTINELS["YOUTUBE_API_KEY"] not in caplog.text + (outcome.error or "")


def test_config_rejects_non_http_urls() -> None:
    from clients.research import ResearchConfig, ResearchConfigError

    with pytest.raises(ResearchConfigError, match="GITHUB_API_URL must be an absolute http"):
        ResearchConfig.from_env({"GITHUB_API_URL": "ftp://example.com"})
    config = ResearchConfig.from_env({"YOUTUBE_API_KEY": "  ", "DOCS_SEARCH_URL": "https://x.org/api/v3/search/"})
    assert config.youtube_api_key is None and config.docs_kind == "readthedocs"
    assert ResearchConfig.from_env({}).docs_kind == "mdn"
    assert SENTINELS["GITHUB_TOKEN"] not in repr(replace(config, github_token=SENTINELS["GITHUB_TOKEN"]))


@pytest.mark.parametrize(("source", "body"), [
    ("docs", {"errors": {"page": ["not an object"]}}),
    ("docs", {"errors": {"page": "flat"}}),
    ("youtube", {"error": {"code": "E403", "errors": "nope"}}),
    ("devto", {"error": "boom", "status": "five hundred"}),
    ("stackoverflow", {"error_id": "x", "error_name": None}),
])
async def test_undocumented_error_shapes_are_reported_not_crashed_on(upstream: Upstream, run: Runner,
                                                                     source: str, body: object) -> None:
    scripted, _ = upstream
    scripted.on(PRIMARY[source], Reply(status=400, body=body, gzip=source == "stackoverflow"))

    _, outcome = await run(source)

    assert outcome.status == "error", outcome
    assert outcome.error and not outcome.error.startswith("unexpected ")  # not the crash path
