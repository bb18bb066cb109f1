"""Clocks for the engine: the system clock, and a virtual clock that tests can move by hand."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when``."""

    def notify_idle(self) -> None:
        """The engine has nothing to do until a timer fires (a virtual clock may jump ahead)."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        while delay > 0:
            await asyncio.sleep(delay)
            delay = (when - self.now()).total_seconds()

    def notify_idle(self) -> None:
        return None


class VirtualClock:
    """Time that moves only when told to: ``advance``/``advance_to``, or automatically when idle.

    With ``auto_advance`` on, whenever the engine reports idle and something sleeps, the clock jumps
    to the earliest wake-up time, so an hour-long durable timer fires in milliseconds.
    """

    def __init__(self, start: datetime | None = None, *, auto_advance: bool = False) -> None:
        self._now = (start or datetime.now(UTC)).astimezone(UTC)
        self._auto_advance = auto_advance
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._idle_probe: Callable[[], bool] | None = None
        self._step_scheduled = False

    def now(self) -> datetime:
        return self._now

    @property
    def auto_advance(self) -> bool:
        return self._auto_advance

    @auto_advance.setter
    def auto_advance(self, value: bool) -> None:
        self._auto_advance = value
        if value:
            self._schedule_auto_step()

    def set_idle_probe(self, probe: Callable[[], bool] | None) -> None:
        """Let the clock ask whether its owner is idle before jumping ahead."""
        self._idle_probe = probe

    def advance(self, delta: timedelta) -> None:
        self.advance_to(self._now + delta)

    def advance_to(self, when: datetime) -> None:
        if when > self._now:
            self._now = when
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def next_wakeup(self) -> datetime | None:
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._order), future))
        self._schedule_auto_step()
        await future

    def notify_idle(self) -> None:
        self._schedule_auto_step()

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    def _schedule_auto_step(self) -> None:
        if not self._auto_advance or self._step_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._step_scheduled = True
        loop.call_soon(self._auto_step)

    def _auto_step(self) -> None:
        self._step_scheduled = False
        if not self._auto_advance:
            return
        if self._idle_probe is not None and not self._idle_probe():
            return
        wake = self.next_wakeup()
        if wake is not None:
            self.advance_to(wake)
