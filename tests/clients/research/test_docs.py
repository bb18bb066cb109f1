"""Official docs search: MDN by default, Read the Docs when DOCS_SEARCH_URL points at its API."""

from __future__ import annotations

from tests.clients.research.conftest import Runner
from tests.clients.research.upstream import Reply, ScriptedUpstream, fixture_reply

MDN = "/mdn/api/v1/search"
RTD = "/readthedocs/api/v3/search/"
Upstream = tuple[ScriptedUpstream, str]


async def test_mdn_results_link_to_the_public_site(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(MDN, fixture_reply("mdn_search.json"))

    items, outcome = await run("docs", "fetch api")

    assert outcome.status == "ok"
    assert [i.url for i in items] == ["https://developer.mozilla.org/en-US/docs/Web/API/Fetch_API",
                                      "https://developer.mozilla.org/en-US/docs/Web/API/Window/fetch"]
    assert items[0].title == "Fetch API" and items[0].score == 1.0 and items[1].score < 1.0
    assert items[0].summary.startswith("The Fetch API provides an interface")
    assert "mdn" in items[0].tags
    assert scripted.last(MDN).query == {"q": "fetch api", "locale": "en-US", "sort": "best", "page": "1"}


async def test_mdn_400_error_body(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(MDN, fixture_reply("mdn_search_error.json", status=400))

    _, outcome = await run("docs")

    assert outcome.status == "error"
    assert "page: Ensure this value is less than or equal to 10." in (outcome.error or "")


async def test_mdn_500_is_retried(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    failure = {"code": 500, "error": "Search error", "message": "internal server error"}
    scripted.on(MDN, Reply(status=500, body=failure), fixture_reply("mdn_search.json"))

    _, outcome = await run("docs")

    assert outcome.status == "ok" and scripted.count(MDN) == 2


async def test_read_the_docs_selected_by_url(upstream: Upstream, run: Runner) -> None:
    scripted, base = upstream
    scripted.on(RTD, fixture_reply("readthedocs_search.json"))

    rtd_url = f"{base}/readthedocs/api/v3/search/"
    items, outcome = await run("docs", "server side search", DOCS_SEARCH_URL=rtd_url)

    assert outcome.status == "ok"
    (item,) = items
    assert item.url == "https://docs.readthedocs.io/en/latest/server-side-search.html#server-side-search"
    assert item.title == "Server Side Search"
    assert item.summary.startswith("Read the Docs provides full-text search")
    assert item.tags == ["readthedocs", "docs"]
    assert scripted.last(RTD).query == {"q": "server side search", "page_size": "8"}
