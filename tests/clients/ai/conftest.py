"""The AI stand-ins of the sandbox on a real loopback port, plus a clock and sleep that never wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from clients import http
from domain.lessons import LessonSpec, ModuleBrief
from domain.research import ResearchItem
from sandbox.ai import AI_STATS, AIStats, register, sandbox_ai_env
from sandbox.behaviour import Behaviour
from tests.clients.loopback import serve


class ScriptedBehaviour:
    """Faults per provider in request order (then `default`); stands in for sandbox.behaviour.Behaviour
    where a test needs an exact sequence such as 'blank answer, then a good one'."""

    def __init__(
        self, script: dict[str, list[str | None]] | None = None, default: dict[str, str | None] | None = None
    ) -> None:
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.default = default or {}
        self._stop = asyncio.Event()

    async def before(self, source: str) -> str | None:
        queue = self.script.get(source)
        if queue:
            return queue.pop(0)
        return self.default.get(source)

    async def hang(self) -> None:
        await self._stop.wait()


@dataclass
class Sandbox:
    base_url: str
    stats: AIStats
    behaviour: Behaviour | ScriptedBehaviour

    def env(self, **overrides: str) -> dict[str, str]:
        env = sandbox_ai_env(self.base_url)
        env.update(overrides)
        return {k: v for k, v in env.items() if v != ""}


@dataclass
class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    now: float = 100.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture(autouse=True)
async def _close_shared_session() -> AsyncIterator[None]:
    yield
    await http.close_session()


@asynccontextmanager
async def start_sandbox(behaviour: Behaviour | ScriptedBehaviour) -> AsyncIterator[Sandbox]:
    app = web.Application()
    register(app, behaviour)
    async with serve(app) as base_url:
        try:
            yield Sandbox(base_url, app[AI_STATS], behaviour)
        finally:  # release handlers still hanging on a "timeout" fault so the server stops at once
            if isinstance(behaviour, ScriptedBehaviour):
                behaviour._stop.set()
            else:
                behaviour.stop()


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with start_sandbox(Behaviour(seed=7)) as running:
        yield running


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


BRIEF = ModuleBrief(
    module_id="2f0b8c56-9f3e-4f4e-8a43-0d7c1c3f2b11",
    title="Python asyncio",
    description="Event loops, tasks, cancellation.",
    difficulty="intermediate",
    learning_style="hands-on",
)
SPEC = LessonSpec(
    number=1,
    title="Python asyncio: Foundations",
    objectives=["Run a coroutine", "Create tasks"],
    summary="What the event loop does and how coroutines run on it.",
)


def research_items(count: int = 4) -> list[ResearchItem]:
    return [
        ResearchItem.create(
            source="github" if n % 2 else "docs",
            title=f"Asyncio resource {n}",
            url=f"https://example.org/asyncio/{n}",
            summary=f"Notes number {n} on asyncio.",
            score=0.5,
            published_at="2026-03-01T00:00:00Z",
            tags=["python", "asyncio"],
        )
        for n in range(1, count + 1)
    ]
