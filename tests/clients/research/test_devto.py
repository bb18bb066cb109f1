"""Dev.to (Forem) client: article shapes, the text/plain 429, the search → tag fallback."""

from __future__ import annotations

from tests.clients.research.conftest import Runner
from tests.clients.research.upstream import Reply, ScriptedUpstream, fixture, fixture_json, fixture_reply

SEARCH = "/devto/api/articles/search"
ARTICLES = "/devto/api/articles"
Upstream = tuple[ScriptedUpstream, str]


async def test_parses_articles(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, fixture_reply("devto_articles.json"))

    items, outcome = await run("devto", "go nat traversal")

    assert outcome.status == "ok"
    (item,) = items
    assert item.title == "I built agent-to-agent communication that works behind any NAT"
    assert item.url == "https://dev.to/artem_a/slug"
    assert item.tags == ["go"]  # from the tag_list ARRAY, not the tags string
    assert item.published_at == "2026-04-25T11:04:19Z"
    assert item.summary == (
        "If you have ever tried connecting two AI agents running on different machines... (4 min read)"
    )


async def test_single_article_shape_with_swapped_tag_fields(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, Reply(body=[fixture_json("devto_article.json")]))

    items, _ = await run("devto", "weekly wins")

    assert items[0].tags == ["discuss", "weeklyretro"]
    assert items[0].score > 0


async def test_headers_and_query(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, fixture_reply("devto_articles.json"))

    await run("devto", "rust ownership", limit=6)

    request = scripted.last(SEARCH)
    assert request.query == {"q": "rust ownership", "per_page": "6", "page": "1"}
    assert request.headers["Accept"] == "application/vnd.forem.api-v1+json"
    assert "urllib" not in request.headers["User-Agent"]
    assert "api-key" not in {k.lower() for k in request.headers}


async def test_plain_text_429_is_waited_out_then_retried(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    throttled = Reply(status=429, body=fixture("devto_rate_limited.txt"), content_type="text/plain",
                      headers={"Retry-After": "2"})
    scripted.on(SEARCH, throttled, fixture_reply("devto_articles.json"))

    items, outcome = await run("devto")

    assert outcome.status == "ok" and items
    assert run.fake_time.sleeps == [2.0]


async def test_persistent_429_becomes_rate_limited(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, Reply(status=429, body=fixture("devto_rate_limited.txt"), content_type="text/plain",
                              headers={"Retry-After": "600"}))

    _, outcome = await run("devto")

    assert outcome.status == "rate_limited" and "Retry later" in (outcome.error or "")
    assert scripted.count(SEARCH) == 1


async def test_missing_search_endpoint_falls_back_to_tag_listing(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, fixture_reply("devto_not_found.json", status=404))
    scripted.on(ARTICLES, fixture_reply("devto_articles.json"))

    items, outcome = await run("devto", "Go: networking tricks")

    assert outcome.status == "ok" and len(items) == 1
    assert scripted.last(ARTICLES).query["tag"] == "go"


async def test_empty_403_from_varnish_is_explained(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, Reply(status=403, body=b"", content_type="text/html"))

    _, outcome = await run("devto")

    assert outcome.status == "error" and "User-Agent" in (outcome.error or "")


async def test_json_error_body(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, fixture_reply("devto_unauthorized.json", status=401))

    _, outcome = await run("devto")

    assert outcome.status == "error" and "unauthorized" in (outcome.error or "")
