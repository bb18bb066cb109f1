"""sandbox.behaviour: spec parsing, seeded fault draws, latency ranges, runtime changes."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.behaviour import Behaviour, BehaviourError, Fault, parse_fault, parse_latency


def test_parse_specs() -> None:
    assert parse_latency("github=100-300") == ("github", (100, 300))
    assert parse_latency("groq=250") == ("groq", (250, 250))
    assert parse_fault("groq=429:0.5") == ("groq", Fault("429", 0.5))
    assert parse_fault("docs=timeout") == ("docs", Fault("timeout", 1.0))


@pytest.mark.parametrize(
    ("parser", "spec", "message"),
    [
        (parse_latency, "github", "SOURCE=MIN-MAX"),
        (parse_latency, "github=300-100", "0 <= MIN <= MAX"),
        (parse_latency, "github=a-b", "SOURCE=MIN-MAX"),
        (parse_latency, "reddit=1-2", "unknown upstream 'reddit'"),
        (parse_fault, "github=explode:1", "unknown fault kind 'explode'"),
        (parse_fault, "github=429:1.5", "between 0 and 1"),
        (parse_fault, "github=429:often", "RATE must be a number"),
        (parse_fault, "github", "SOURCE=KIND:RATE"),
    ],
)
def test_bad_specs_are_explained(parser: object, spec: str, message: str) -> None:
    with pytest.raises(BehaviourError, match=message):
        parser(spec)  # type: ignore[operator]


async def draws(behaviour: Behaviour, source: str, n: int) -> list[str | None]:
    return [await behaviour.before(source) for _ in range(n)]


async def test_seeded_faults_repeat_and_respect_the_rate() -> None:
    first = await draws(Behaviour.from_specs(faults=["github=429:0.3"], seed=7), "github", 200)
    second = await draws(Behaviour.from_specs(faults=["github=429:0.3"], seed=7), "github", 200)
    other_seed = await draws(Behaviour.from_specs(faults=["github=429:0.3"], seed=8), "github", 200)

    assert first == second != other_seed
    assert set(first) == {None, "429"}
    assert 30 <= first.count("429") <= 90  # ~60 expected at rate 0.3


async def test_each_upstream_has_its_own_sequence() -> None:
    # Interleaving requests to another upstream must not change github's draws.
    alone = Behaviour.from_specs(faults=["github=error:0.5", "groq=error:0.5"], seed=3)
    mixed = Behaviour.from_specs(faults=["github=error:0.5", "groq=error:0.5"], seed=3)
    github_alone = await draws(alone, "github", 50)
    github_mixed = []
    for _ in range(50):
        await mixed.before("groq")
        github_mixed.append(await mixed.before("github"))
    assert github_alone == github_mixed


async def test_rates_zero_and_one_and_counts() -> None:
    behaviour = Behaviour.from_specs(faults=["docs=malformed:1", "devto=timeout:0"])
    assert await draws(behaviour, "docs", 5) == ["malformed"] * 5
    assert await draws(behaviour, "devto", 5) == [None] * 5
    snapshot = behaviour.snapshot()
    assert snapshot["requests"]["docs"] == 5 and snapshot["faults_served"]["docs"] == 5
    assert snapshot["requests"]["devto"] == 5 and snapshot["faults_served"]["devto"] == 0


async def test_latency_is_drawn_within_the_range() -> None:
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    behaviour = Behaviour(latency={"youtube": (100, 300)}, seed=1, sleep=record)
    await draws(behaviour, "youtube", 50)
    await draws(behaviour, "github", 3)  # no latency configured: no sleep at all

    assert len(slept) == 50
    assert all(0.1 <= s <= 0.3 for s in slept)
    assert max(slept) - min(slept) > 0.05  # really a range, not a constant


async def test_runtime_changes_and_clearing() -> None:
    behaviour = Behaviour()
    behaviour.set_fault("gemini", "429", 1.0)
    assert await behaviour.before("gemini") == "429"
    behaviour.set_fault("gemini", None)
    assert await behaviour.before("gemini") is None
    with pytest.raises(BehaviourError):
        behaviour.set_fault("gemini", "boom", 1.0)
    with pytest.raises(BehaviourError):
        behaviour.set_latency("nowhere", 1, 2)


async def test_hang_ends_when_the_sandbox_stops() -> None:
    behaviour = Behaviour()
    hanging = asyncio.create_task(behaviour.hang())
    await asyncio.sleep(0)
    assert not hanging.done()
    behaviour.stop()
    await asyncio.wait_for(hanging, timeout=5)
