"""Fixtures for the research clients: a scripted loopback upstream, a config pointing at it, fake time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from clients import http
from clients.research import (
    ResearchCache,
    ResearchConfig,
    ResearchItem,
    SourceGates,
    SourceOutcome,
    search_source,
)
from tests.clients.loopback import serve
from tests.clients.research.upstream import ScriptedUpstream

SENTINELS = {
    "GITHUB_TOKEN": "ghp_SENTINELgithub0000000000000000000",
    "STACKEXCHANGE_KEY": "se-SENTINEL-key-1111",
    "YOUTUBE_API_KEY": "AIzaSENTINEL-youtube-2222",
}
# 2026-12-04 19:00 UTC = 11:00 Pacific (PST): next Pacific midnight is 2026-12-05 08:00 UTC.
NOW = datetime(2026, 12, 4, 19, 0, tzinfo=UTC).timestamp()


class FakeTime:
    """Wall clock + sleep + random for SourceCall/with_retries; sleeping only advances the clock."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def timing(self, rand: float = 0.5) -> http.RetryTiming:
        return http.RetryTiming(clock=self.clock, sleep=self.sleep, random=lambda: rand)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[ScriptedUpstream, str]]:
    scripted = ScriptedUpstream()
    async with serve(scripted.app()) as base:
        yield scripted, base
        scripted.release.set()
    await http.close_session()


def make_config(base: str, **overrides: object) -> ResearchConfig:
    env = {
        "GITHUB_API_URL": f"{base}/github",
        "STACKEXCHANGE_API_URL": f"{base}/stackexchange/2.3",
        "YOUTUBE_API_URL": f"{base}/youtube/v3",
        "DEVTO_API_URL": f"{base}/devto/api",
        "DOCS_SEARCH_URL": f"{base}/mdn/api/v1/search",
        **SENTINELS,
    }
    env.update({k: str(v) for k, v in overrides.items() if isinstance(v, str)})
    config = ResearchConfig.from_env(env)
    fields = {k: v for k, v in overrides.items() if not k.isupper()}
    return replace(config, **fields) if fields else config


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def gates() -> SourceGates:
    return SourceGates()


class Runner:
    """search_source with the test's upstream, fresh gates and fake time."""

    def __init__(self, base: str, gates: SourceGates, fake_time: FakeTime) -> None:
        self.base, self.gates, self.fake_time = base, gates, fake_time

    async def __call__(self, source: str, topic: str = "react hooks", *, limit: int = 8,
                       cache: ResearchCache | None = None, **config: object
                       ) -> tuple[list[ResearchItem], SourceOutcome]:
        return await search_source(
            source, topic, config=make_config(self.base, **config), cache=cache, limit=limit,
            gates=self.gates, clock=self.fake_time.clock, timing=self.fake_time.timing(),
        )


@pytest.fixture
def run(upstream: tuple[ScriptedUpstream, str], gates: SourceGates, fake_time: FakeTime) -> Runner:
    return Runner(upstream[1], gates, fake_time)
