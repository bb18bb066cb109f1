"""The research clients against the sandbox's stand-ins: content, real shapes, injected faults, controls."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import aiohttp
import pytest

from clients import http
from clients.http import RetryPolicy, RetryTiming
from clients.research import ResearchConfig, SourceGates, gather_research, search_source
from sandbox.behaviour import Behaviour
from sandbox.server import create_app, research_env
from tests.clients.loopback import serve

RESEARCH = ("github", "stackoverflow", "youtube", "devto", "docs")


@dataclass
class Sandbox:
    base: str
    behaviour: Behaviour
    config: ResearchConfig
    sleeps: list[float]

    def timing(self) -> RetryTiming:
        async def no_wait(seconds: float) -> None:
            self.sleeps.append(seconds)

        return RetryTiming(sleep=no_wait, random=lambda: 0.5)

    async def search(self, source: str, topic: str, **config: object) -> tuple[list, object]:
        return await search_source(
            source, topic, config=replace(self.config, **config), gates=SourceGates(), timing=self.timing()
        )


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    behaviour = Behaviour(seed=1)
    async with serve(create_app(behaviour)) as base:
        yield Sandbox(base, behaviour, ResearchConfig.from_env(research_env(base)), [])
        behaviour.stop()
    await http.close_session()


@pytest.mark.parametrize(
    ("topic", "word", "empty"),
    [
        ("python asyncio", "asyncio", set()),
        ("react hooks", "react", set()),
        ("postgresql indexing", "index", {"docs"}),  # MDN has nothing on PostgreSQL: an honest empty answer
        ("docker networking", "docker", set()),
        ("rust ownership", "rust", set()),
    ],
)
async def test_every_source_answers_each_topic(
    sandbox: Sandbox, topic: str, word: str, empty: set[str]
) -> None:
    result = await gather_research(topic, config=sandbox.config, gates=SourceGates(), timing=sandbox.timing())

    assert {s: o.status for s, o in result.outcomes.items()} == dict.fromkeys(RESEARCH, "ok")
    assert {s for s, o in result.outcomes.items() if o.items == 0} == empty
    assert word in (result.items[0].title + result.items[0].summary).lower()
    assert sandbox.sleeps == []  # no retries were needed


async def test_unknown_topic_gets_generic_content_from_the_query(sandbox: Sandbox) -> None:
    result = await gather_research(
        "kubernetes operators", config=sandbox.config, gates=SourceGates(), timing=sandbox.timing()
    )

    answered = {s for s, o in result.outcomes.items() if o.status == "ok" and o.items}
    assert answered == {"github", "stackoverflow", "youtube", "devto"}
    assert all("kubernetes" in (i.title + i.summary + " ".join(i.tags)).lower() for i in result.items)


async def test_the_query_decides_the_order(sandbox: Sandbox) -> None:
    gather_first, _ = await sandbox.search("stackoverflow", "asyncio gather wait")
    loop_first, _ = await sandbox.search("stackoverflow", "asyncio event loop deprecation warning")

    assert gather_first[0].title == "asyncio.gather vs asyncio.wait (vs asyncio.TaskGroup)"
    assert loop_first[0].title.startswith("asyncio.get_event_loop(): DeprecationWarning")
    assert "Top answer" in gather_first[0].summary  # the answers call found the served question


@pytest.mark.parametrize("source", RESEARCH)
async def test_429_fault_in_the_real_shape_becomes_rate_limited(sandbox: Sandbox, source: str) -> None:
    sandbox.behaviour.set_fault(source, "429", 1.0)

    items, outcome = await sandbox.search(source, "python asyncio")

    assert items == [] and outcome.status == "rate_limited", outcome


@pytest.mark.parametrize("source", RESEARCH)
@pytest.mark.parametrize("kind", ["error", "malformed"])
async def test_error_and_malformed_faults_become_error_outcomes(
    sandbox: Sandbox, source: str, kind: str
) -> None:
    sandbox.behaviour.set_fault(source, kind, 1.0)

    items, outcome = await sandbox.search(source, "react hooks")

    assert items == [] and outcome.status == "error", outcome


@pytest.mark.parametrize("source", RESEARCH)
async def test_timeout_fault_hangs_past_the_client_timeout(sandbox: Sandbox, source: str) -> None:
    sandbox.behaviour.set_fault(source, "timeout", 1.0)

    _, outcome = await sandbox.search(
        source, "rust ownership", request_timeout_s=0.2, retry=RetryPolicy(max_attempts=1)
    )

    assert outcome.status == "error" and "no complete response within 0.2s" in (outcome.error or "")


async def test_partial_fault_rate_is_absorbed_by_retries(sandbox: Sandbox) -> None:
    sandbox.behaviour.set_fault("docs", "error", 0.5)
    outcomes = [(await sandbox.search("docs", "python asyncio"))[1].status for _ in range(10)]
    counts = sandbox.behaviour.snapshot()

    assert outcomes.count("ok") >= 8  # 3 attempts each: a failure needs three faults in a row
    assert counts["faults_served"]["docs"] > 0 and sandbox.sleeps


async def raw(base: str, path: str, **kwargs: object) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(base + path, **kwargs) as resp,
    ):
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read()


async def test_stack_exchange_always_gzips_and_refuses_query_keys(sandbox: Sandbox) -> None:
    search = "/stackexchange/2.3/search/advanced?q=rust&site=stackoverflow"
    status, headers, body = await raw(sandbox.base, search)
    assert status == 200 and headers["content-encoding"] == "gzip" and body[:2] == b"\x1f\x8b"
    assert b'"quota_remaining"' in gzip.decompress(body)

    status, headers, body = await raw(sandbox.base, f"{search}&key=k")
    assert status == 400 and b'"error_name": "bad_parameter"' in gzip.decompress(body)


async def test_youtube_requires_a_key_and_devto_refuses_urllib(sandbox: Sandbox) -> None:
    status, _, body = await raw(sandbox.base, "/youtube/v3/search?part=snippet&q=rust")
    assert status == 403 and b"unregistered callers" in body

    status, headers, body = await raw(
        sandbox.base, "/devto/api/articles?tag=rust", headers={"User-Agent": "Python-urllib/3.11"}
    )
    assert (status, body, headers.get("server")) == (403, b"", "Varnish")


async def test_mdn_validates_page_like_rumba(sandbox: Sandbox) -> None:
    status, _, body = await raw(sandbox.base, "/mdn/api/v1/search?q=fetch&page=11")
    assert status == 400 and b"less than or equal to 10" in body


async def test_read_the_docs_stand_in(sandbox: Sandbox) -> None:
    items, outcome = await sandbox.search(
        "docs", "postgresql partial index", docs_search_url=f"{sandbox.base}/readthedocs/api/v3/search/"
    )

    assert outcome.status == "ok"
    assert items[0].url == "https://www.postgresql.org/docs/current/indexes-partial.html#INDEXES-PARTIAL"


async def test_control_routes(sandbox: Sandbox) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{sandbox.base}/_sandbox/faults", json={"source": "github", "kind": "error", "rate": 1}
        ) as resp:
            assert resp.status == 200 and (await resp.json())["faults"] == {
                "github": {"kind": "error", "rate": 1.0}
            }
        async with session.post(
            f"{sandbox.base}/_sandbox/latency", json={"source": "devto", "min_ms": 0, "max_ms": 5}
        ) as resp:
            assert (await resp.json())["latency"] == {"devto": [0, 5]}
        async with session.post(
            f"{sandbox.base}/_sandbox/faults", json={"source": "x", "kind": "error"}
        ) as resp:
            assert resp.status == 400 and "unknown upstream 'x'" in (await resp.json())["error"]
        async with session.post(f"{sandbox.base}/_sandbox/faults", data="not json") as resp:
            assert resp.status == 400

        _, outcome = await sandbox.search("github", "react hooks")
        assert outcome.status == "error"
        async with session.get(f"{sandbox.base}/_sandbox/requests") as resp:
            counts = await resp.json()
        assert counts["requests"]["github"] == 3 and counts["faults_served"]["github"] == 3  # 3 attempts

        async with session.post(f"{sandbox.base}/_sandbox/faults", json={"source": "github", "kind": None}):
            pass
        async with session.post(f"{sandbox.base}/_sandbox/reset") as resp:
            assert (await resp.json())["requests"]["github"] == 0
        _, outcome = await sandbox.search("github", "react hooks")
        assert outcome.status == "ok"
