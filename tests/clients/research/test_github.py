"""GitHub search client against the shared fixtures served on loopback."""

from __future__ import annotations

import pytest

from tests.clients.research.conftest import NOW, SENTINELS, Runner
from tests.clients.research.upstream import Reply, ScriptedUpstream, fixture_reply

REPOS = "/github/search/repositories"
ISSUES = "/github/search/issues"
Upstream = tuple[ScriptedUpstream, str]


async def test_parses_repositories_and_issues(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(REPOS, fixture_reply("github_search_repositories.json"))
    scripted.on(ISSUES, fixture_reply("github_search_issues.json"))

    items, outcome = await run("github", "react hooks", limit=4)

    assert outcome.status == "ok" and outcome.items == len(items) == 4
    react, hooks, *issues = items
    assert (react.title, react.url) == ("facebook/react", "https://github.com/facebook/react")
    assert react.published_at == "2025-05-31T22:13:02Z"
    assert "react" in react.tags and "javascript" in react.tags
    assert react.score > hooks.score > 0  # 225k stars vs 9k stars
    assert hooks.summary.startswith("Awesome React Hooks & resources: useState<T>, useEffect")  # literal
    assert issues[0].url.startswith("https://github.com/octokit-fixture-org/")
    assert "issue" in issues[0].tags


async def test_sends_documented_headers_and_advanced_issue_search(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(REPOS, fixture_reply("github_search_repositories.json"))
    scripted.on(ISSUES, fixture_reply("github_search_issues.json"))

    await run("github", "react hooks", limit=8)

    repo_request = scripted.last(REPOS)
    assert repo_request.query["q"] == "react hooks"
    assert repo_request.headers["Accept"] == "application/vnd.github+json"
    assert repo_request.headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert repo_request.headers["Authorization"] == f"Bearer {SENTINELS['GITHUB_TOKEN']}"
    assert "urllib" not in repo_request.headers["User-Agent"]
    issue_request = scripted.last(ISSUES)
    assert issue_request.query["advanced_search"] == "true"
    assert "is:issue" in issue_request.query["q"]


async def test_primary_rate_limit_stops_the_source_until_reset(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    reset = int(NOW) + 1800
    scripted.on(REPOS, fixture_reply("github_rate_limited.json", status=403, headers={
        "x-ratelimit-limit": "10", "x-ratelimit-remaining": "0", "x-ratelimit-used": "10",
        "x-ratelimit-reset": str(reset), "x-ratelimit-resource": "search"}))

    items, outcome = await run("github")

    assert items == [] and outcome.status == "rate_limited"
    assert "primary rate limit" in (outcome.error or "")
    assert "2026-12-04T19:30:00+00:00" in (outcome.error or "")
    assert scripted.count("/github") == 1  # a quota error is not retried

    _, again = await run("github")
    assert again.status == "rate_limited"
    assert scripted.count("/github") == 1  # blocked in-process: no request was sent

    run.fake_time.now = reset + 1
    scripted.on(REPOS, fixture_reply("github_search_repositories.json"))
    scripted.on(ISSUES, fixture_reply("github_search_issues.json"))
    _, after_reset = await run("github")
    assert after_reset.status == "ok"


@pytest.mark.parametrize(("headers", "expected_wait"), [
    ({"retry-after": "60", "x-ratelimit-remaining": "14"}, 60.0),
    ({"x-ratelimit-remaining": "14"}, 60.0),  # no retry-after: the documented one-minute minimum
    ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 90)}, 90.0),
])
async def test_secondary_rate_limit(upstream: Upstream, run: Runner, headers: dict[str, str],
                                    expected_wait: float) -> None:
    scripted, _ = upstream
    scripted.on(REPOS, fixture_reply("github_secondary_rate_limited.json", status=403, headers=headers))

    _, outcome = await run("github")

    assert outcome.status == "rate_limited"
    assert "secondary rate limit" in (outcome.error or "")
    block = run.gates.blocked("github", run.fake_time.now)
    assert block is not None and block.until == pytest.approx(run.fake_time.now + expected_wait)


async def test_short_secondary_limit_is_waited_out_then_retried(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(REPOS,
                fixture_reply("github_secondary_rate_limited.json", status=429, headers={"retry-after": "3"}),
                fixture_reply("github_search_repositories.json"))
    scripted.on(ISSUES, fixture_reply("github_search_issues.json"))

    items, outcome = await run("github")

    assert outcome.status == "ok" and items
    assert run.fake_time.sleeps == [3.0]
    assert scripted.count(REPOS) == 2


async def test_failing_issue_search_keeps_repositories(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(REPOS, fixture_reply("github_search_repositories.json"))
    scripted.on(ISSUES, Reply(status=422, body={"message": "Validation Failed", "errors": []}))

    items, outcome = await run("github", limit=8)

    assert outcome.status == "ok"
    assert [i.title for i in items] == ["facebook/react", "rehooks/awesome-react-hooks"]


async def test_bad_token_names_the_setting_not_the_value(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(REPOS, Reply(status=401, body={
        "message": f"Bad credentials for {SENTINELS['GITHUB_TOKEN']}",
        "documentation_url": "https://docs.github.com/rest"}))

    _, outcome = await run("github")

    assert outcome.status == "error"
    assert "GITHUB_TOKEN" in (outcome.error or "")
    assert SENTINELS["GITHUB_TOKEN"] not in (outcome.error or "")


async def test_5xx_is_retried_with_backoff(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(REPOS, Reply(status=502, body="<html>bad gateway</html>", content_type="text/html"),
                Reply(status=503, body=""), fixture_reply("github_search_repositories.json"))
    scripted.on(ISSUES, fixture_reply("github_search_issues.json"))

    _, outcome = await run("github")

    assert outcome.status == "ok"
    # Full jitter with random()=0.5 and the default policy (base 0.5 s): 0.5*0.5, then 0.5*1.0.
    assert run.fake_time.sleeps == [0.25, 0.5]


async def test_last_request_of_the_window_stops_the_source_early(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    reset = int(NOW) + 40
    scripted.on(REPOS, fixture_reply("github_search_repositories.json", headers={
        "x-ratelimit-limit": "30", "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}))
    scripted.on(ISSUES, fixture_reply("github_search_issues.json"))

    items, outcome = await run("github")
    assert outcome.status == "ok" and len(items) == 2  # the repositories it got are kept
    assert scripted.count(ISSUES) == 0  # the issue search would have been refused

    _, again = await run("github")
    assert again.status == "rate_limited" and scripted.count(REPOS) == 1
