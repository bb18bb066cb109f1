"""How the sandbox misbehaves on purpose: per-upstream latency and fault injection with a seeded RNG.

Every stand-in route calls `await behaviour.before(source)` first; it sleeps the configured latency
and returns the fault kind to emulate (rendered by the route in that API's real error shape) or None.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

RESEARCH_UPSTREAMS: tuple[str, ...] = ("github", "stackoverflow", "youtube", "devto", "docs")
AI_UPSTREAMS: tuple[str, ...] = ("deepseek", "groq", "gemini", "openai")
UPSTREAMS: tuple[str, ...] = RESEARCH_UPSTREAMS + AI_UPSTREAMS
FAULT_KINDS: tuple[str, ...] = ("error", "429", "timeout", "malformed")
# Longer than any client timeout in the app (DeepSeek's are minutes); cut short at shutdown.
DEFAULT_HANG_S = 900.0


class BehaviourError(ValueError):
    """A bad --latency/--fault spec or control request; the message says what is expected."""


@dataclass(frozen=True)
class Fault:
    kind: str
    rate: float  # 0..1: share of requests that get the fault

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rate": self.rate}


def _check_source(source: str) -> str:
    if source not in UPSTREAMS:
        raise BehaviourError(f"unknown upstream {source!r}; expected one of {', '.join(UPSTREAMS)}")
    return source


def parse_latency(spec: str) -> tuple[str, tuple[int, int]]:
    """'github=100-300' → ('github', (100, 300)); a single number means a fixed latency."""
    source, sep, value = spec.partition("=")
    if not sep:
        raise BehaviourError(f"latency {spec!r} must look like SOURCE=MIN-MAX (milliseconds)")
    low_text, _, high_text = value.partition("-")
    try:
        low = int(low_text)
        high = int(high_text) if high_text else low
    except ValueError:
        raise BehaviourError(f"latency {spec!r} must look like SOURCE=MIN-MAX (milliseconds)") from None
    return _check_source(source.strip()), _check_range(low, high)


def _check_range(low: int, high: int) -> tuple[int, int]:
    if low < 0 or high < low:
        raise BehaviourError(f"latency range {low}-{high} ms must satisfy 0 <= MIN <= MAX")
    return low, high


def parse_fault(spec: str) -> tuple[str, Fault]:
    """'groq=429:0.5' → ('groq', Fault('429', 0.5)); the rate defaults to 1 (every request)."""
    source, sep, value = spec.partition("=")
    if not sep:
        raise BehaviourError(f"fault {spec!r} must look like SOURCE=KIND:RATE")
    kind, _, rate_text = value.partition(":")
    try:
        rate = float(rate_text) if rate_text else 1.0
    except ValueError:
        raise BehaviourError(f"fault {spec!r}: RATE must be a number between 0 and 1") from None
    return _check_source(source.strip()), _check_fault(kind.strip(), rate)


def _check_fault(kind: str, rate: float) -> Fault:
    if kind not in FAULT_KINDS:
        raise BehaviourError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
    if not 0.0 <= rate <= 1.0:
        raise BehaviourError(f"fault rate {rate} must be between 0 and 1")
    return Fault(kind, rate)


class Behaviour:
    def __init__(
        self,
        *,
        latency: dict[str, tuple[int, int]] | None = None,
        faults: dict[str, Fault] | None = None,
        seed: int | None = None,
        hang_s: float = DEFAULT_HANG_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._sleep = sleep  # injectable so tests can check the drawn latency without waiting
        self.latency: dict[str, tuple[int, int]] = {}
        self.faults: dict[str, Fault] = {}
        for source, (low, high) in (latency or {}).items():
            self.set_latency(source, low, high)
        for source, fault in (faults or {}).items():
            self.set_fault(source, fault.kind, fault.rate)
        self.seed = seed
        self.hang_s = hang_s
        self.requests: Counter[str] = Counter()
        self.faults_served: Counter[str] = Counter()
        self._rngs: dict[str, random.Random] = {}
        self._stopping = asyncio.Event()

    @classmethod
    def from_specs(
        cls,
        *,
        latency: Sequence[str] = (),
        faults: Sequence[str] = (),
        seed: int | None = None,
        hang_s: float = DEFAULT_HANG_S,
    ) -> Behaviour:
        """From CLI specs (`github=100-300`, `groq=429:0.5`); BehaviourError names the bad one."""
        return cls(
            latency=dict(parse_latency(s) for s in latency),
            faults=dict(parse_fault(s) for s in faults),
            seed=seed,
            hang_s=hang_s,
        )

    def _rng(self, source: str) -> random.Random:
        # One generator per upstream: a seeded run repeats per source however requests interleave.
        rng = self._rngs.get(source)
        if rng is None:
            rng = random.Random(None if self.seed is None else f"{self.seed}:{source}")
            self._rngs[source] = rng
        return rng

    def random(self, source: str) -> float:
        """A draw from the upstream's seeded generator (routes use it to vary fault flavours)."""
        return self._rng(source).random()

    async def before(self, source: str) -> str | None:
        """Count the request, sleep the configured latency, return the fault kind to emulate or None."""
        _check_source(source)
        self.requests[source] += 1
        rng = self._rng(source)
        low, high = self.latency.get(source, (0, 0))
        if high > 0:
            await self._sleep(rng.uniform(low, high) / 1000)
        fault = self.faults.get(source)
        if fault is not None and fault.rate > 0 and rng.random() < fault.rate:
            self.faults_served[source] += 1
            return fault.kind
        return None

    async def hang(self) -> None:
        """Emulate a server that never answers (until the sandbox stops)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=self.hang_s)

    def stop(self) -> None:
        self._stopping.set()

    def set_latency(self, source: str, low: int, high: int) -> None:
        self.latency[_check_source(source)] = _check_range(int(low), int(high))

    def set_fault(self, source: str, kind: str | None, rate: float = 1.0) -> None:
        _check_source(source)
        if kind in (None, "", "none"):
            self.faults.pop(source, None)
        else:
            self.faults[source] = _check_fault(str(kind), float(rate))

    def reset_counts(self) -> None:
        self.requests.clear()
        self.faults_served.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": {s: self.requests[s] for s in UPSTREAMS},
            "faults_served": {s: self.faults_served[s] for s in UPSTREAMS},
            "faults": {s: f.to_dict() for s, f in self.faults.items()},
            "latency": {s: list(r) for s, r in self.latency.items()},
            "seed": self.seed,
        }
