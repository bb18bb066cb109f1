"""Stack Exchange 2.3 client: gzip, entities, answers, backoff, throttles, Bearer auth."""

from __future__ import annotations

import json

import pytest

from tests.clients.research.conftest import NOW, SENTINELS, Runner
from tests.clients.research.upstream import Reply, ScriptedUpstream, fixture, fixture_json, fixture_reply

SEARCH = "/stackexchange/2.3/search/advanced"
Upstream = tuple[ScriptedUpstream, str]


def search_body(**wrapper: object) -> dict[str, object]:
    body = fixture_json("stackexchange_search_advanced.json")
    question = body["items"][0]
    question["title"] = "Why isn&#39;t &quot;require&quot; defined in the browser?"
    question["body"] = "<p>I get <code>Uncaught ReferenceError: require is not defined</code> &amp; more.</p>"
    body.update(wrapper)
    return body


def answers_body(question_id: int = 19059580) -> dict[str, object]:
    return {"items": [
        {"owner": {"display_name": "a"}, "is_accepted": False, "score": 900, "answer_id": 1,
         "question_id": question_id, "body": "<p>Popular but not accepted.</p>"},
        {"owner": {"display_name": "b"}, "is_accepted": True, "score": 475, "answer_id": 19059825,
         "question_id": question_id, "body": "<p>Use a bundler such as <strong>webpack</strong>.</p>"},
    ], "has_more": False, "quota_max": 10000, "quota_remaining": 9990}


def answers_path(question_id: int = 19059580) -> str:
    return f"/stackexchange/2.3/questions/{question_id}/answers"


async def test_gzip_question_with_decoded_entities_and_best_answer(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, Reply(body=search_body(), gzip=True))
    scripted.on(answers_path(), Reply(body=answers_body(), gzip=True))

    items, outcome = await run("stackoverflow", "require is not defined")

    assert outcome.status == "ok"
    (item,) = items
    assert item.title == "Why isn't \"require\" defined in the browser?"
    assert item.url == "https://stackoverflow.com/questions/19059580/client-on-node-js-uncaught-referenceerror-require-is-not-defined"
    assert item.published_at == "2013-09-27T20:31:00Z"
    assert item.summary.startswith("I get Uncaught ReferenceError: require is not defined & more.")
    assert "Top answer (475 votes, accepted): Use a bundler such as webpack." in item.summary
    assert item.tags == ["javascript", "node.js", "sockets", "express", "pug"]


async def test_gzip_without_content_encoding_header(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, Reply(body=fixture("stackexchange_search_advanced.json"), gzip_without_header=True))
    scripted.on(answers_path(), Reply(body=answers_body(), gzip_without_header=True))

    items, outcome = await run("stackoverflow")

    assert outcome.status == "ok" and items[0].title.startswith("Client on Node.js")


async def test_key_goes_in_authorization_header_not_query(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, Reply(body=search_body(), gzip=True))
    scripted.on(answers_path(), Reply(body=answers_body(), gzip=True))

    await run("stackoverflow", "react hooks")

    for recorded in scripted.requests:
        assert recorded.headers["Authorization"] == f"Bearer {SENTINELS['STACKEXCHANGE_KEY']}"
        assert "key" not in recorded.query and "access_token" not in recorded.query
        assert recorded.query["site"] == "stackoverflow"
    search = scripted.last(SEARCH)
    assert search.query["q"] == "react hooks" and search.query["filter"] == "withbody"


async def test_backoff_is_honoured_per_method(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, Reply(body=search_body(backoff=5), gzip=True))
    scripted.on(answers_path(), Reply(body=answers_body(), gzip=True))

    await run("stackoverflow")
    assert run.fake_time.sleeps == []  # the answers method was not under backoff
    await run("stackoverflow")

    # The second search waited out the 5 s backoff of search/advanced before sending.
    assert run.fake_time.sleeps == [5.0]
    assert scripted.count(SEARCH) == 2


async def test_long_backoff_skips_the_source_without_a_request(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, Reply(body=search_body(backoff=120), gzip=True))
    scripted.on(answers_path(), Reply(body=answers_body(), gzip=True))

    await run("stackoverflow")
    _, outcome = await run("stackoverflow")

    assert outcome.status == "rate_limited" and "backoff of 120s" in (outcome.error or "")
    assert scripted.count(SEARCH) == 1


async def test_throttle_violation_with_duration_stops_the_source(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, fixture_reply("stackexchange_throttle.json", status=400, gzip=True))

    _, outcome = await run("stackoverflow")

    assert outcome.status == "rate_limited"
    assert "more requests available in 32322 seconds" in (outcome.error or "")
    block = run.gates.blocked("stackoverflow", run.fake_time.now)
    assert block is not None and block.until == pytest.approx(NOW + 32322)
    _, again = await run("stackoverflow")
    assert again.status == "rate_limited" and scripted.count("/stackexchange") == 1


async def test_backoff_violation(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, fixture_reply("stackexchange_backoff_violation.json", status=400))

    _, outcome = await run("stackoverflow")

    assert outcome.status == "rate_limited" and "Violation of backoff parameter" in (outcome.error or "")
    assert scripted.count(SEARCH) == 1


async def test_quota_used_up_keeps_results_then_stops_until_midnight(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, Reply(body=search_body(quota_remaining=0), gzip=True))

    items, outcome = await run("stackoverflow")

    assert outcome.status == "ok" and len(items) == 1
    assert scripted.count(answers_path()) == 0  # no request after the quota said zero
    _, again = await run("stackoverflow")
    assert again.status == "rate_limited" and "2026-12-05T00:00:00" in (again.error or "")


async def test_failing_answers_call_keeps_questions(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    scripted.on(SEARCH, Reply(body=search_body(), gzip=True))
    scripted.on(answers_path(), Reply(status=400, body={"error_id": 400, "error_name": "bad_parameter",
                                                        "error_message": "ids"}))

    items, outcome = await run("stackoverflow")

    assert outcome.status == "ok" and "Top answer" not in items[0].summary


@pytest.mark.parametrize(("error_id", "name", "expected"), [
    (403, "access_denied", "STACKEXCHANGE_KEY"),
    (406, "access_token_compromised", "STACKEXCHANGE_KEY"),
    (400, "bad_parameter", "bad_parameter"),
])
async def test_api_errors(upstream: Upstream, run: Runner, error_id: int, name: str, expected: str) -> None:
    scripted, _ = upstream
    message = f"rejected {SENTINELS['STACKEXCHANGE_KEY']}"
    scripted.on(SEARCH, Reply(status=400, gzip=True, body={
        "error_id": error_id, "error_name": name, "error_message": message}))

    _, outcome = await run("stackoverflow")

    assert outcome.status == "error" and expected in (outcome.error or "")
    assert SENTINELS["STACKEXCHANGE_KEY"] not in (outcome.error or "")


async def test_temporarily_unavailable_is_retried(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    unavailable = {"error_id": 503, "error_name": "temporarily_unavailable", "error_message": "try later"}
    scripted.on(SEARCH, Reply(status=400, body=unavailable, gzip=True), Reply(body=search_body(), gzip=True))
    scripted.on(answers_path(), Reply(body=answers_body(), gzip=True))

    _, outcome = await run("stackoverflow")

    assert outcome.status == "ok" and scripted.count(SEARCH) == 2 and run.fake_time.sleeps == [0.25]


async def test_200_with_error_body_is_an_error(upstream: Upstream, run: Runner) -> None:
    scripted, _ = upstream
    body = json.dumps({"error_id": 500, "error_name": "internal_error", "error_message": "boom"})
    scripted.on(SEARCH, Reply(status=200, body=body, gzip=True))

    _, outcome = await run("stackoverflow")

    assert outcome.status == "error" and "internal_error" in (outcome.error or "")
