"""Test helpers: an in-process durable host over a function app, with a virtual clock.

Use as a pytest plugin (``pytest_plugins = ["devhost.testing"]`` or ``-p devhost.testing``) to get
the ``durable_host_factory`` fixture::

    async def test_flow(durable_host_factory):
        async with durable_host_factory(app, activity_overrides={"Fetch": {"ok": True}}) as host:
            instance_id = await host.start("MyOrchestrator", input={"n": 3})
            status = await host.wait_done(instance_id)
            assert host.output(status) == ...
            assert host.activity_calls("Fetch") == [...]
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.functions._durable_functions import df_dumps

from devhost.clock import VirtualClock
from devhost.engine import Engine
from devhost.registry import Activity, FunctionApp, FunctionEntry, FunctionRegistry
from devhost.status import TERMINAL_STATUSES, InstanceStatus

__all__ = ["DurableTestHost", "client_event_input", "client_start_input", "durable_host_factory"]


def client_start_input(value: Any) -> str | None:
    """ExecutionStarted.Input as the Python client's ``start_new`` produces it (§6.5)."""
    return None if value is None else json.dumps(df_dumps(value))


def client_event_input(value: Any) -> str:
    """EventRaised.Input as the Python client's ``raise_event`` produces it (§6.5)."""
    return json.dumps(json.dumps(value))


class DurableTestHost:
    """An Engine over ``app`` in ``state_dir``; activities can be replaced and their inputs observed.

    ``activity_overrides`` maps an activity name to a replacement: a callable (sync or async) taking
    the decoded input, an exception instance to raise, or any other value to return.
    """

    def __init__(
        self,
        app: FunctionApp,
        state_dir: Path,
        *,
        activity_overrides: Mapping[str, Any] | None = None,
        clock: VirtualClock | None = None,
        max_concurrent_activities: int | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.clock = clock or VirtualClock()
        self._calls: dict[str, list[Any]] = {}
        registry = _observed(FunctionRegistry.from_app(app), activity_overrides or {}, self._calls)
        self.engine = Engine(
            registry,
            state_dir,
            clock=self.clock,
            max_concurrent_activities=max_concurrent_activities,
            logger=logger,
        )

    async def __aenter__(self) -> DurableTestHost:
        await self.engine.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.engine.stop()

    async def start(self, name: str, input: Any = None, instance_id: str | None = None) -> str:
        """Start like ``DurableOrchestrationClient.start_new`` would (same input encoding)."""
        return await self.engine.start_new(name, instance_id, client_start_input(input))

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Raise like ``DurableOrchestrationClient.raise_event`` (the orchestrator gets JSON text)."""
        await self.engine.raise_event(instance_id, name, client_event_input(data))

    async def wait_done(self, instance_id: str, timeout: float = 5.0) -> InstanceStatus:
        """Wait for a terminal status, letting the virtual clock jump to each due timer meanwhile."""
        previous = self.clock.auto_advance
        self.clock.auto_advance = True
        try:
            return await self.engine.wait_for_status(instance_id, TERMINAL_STATUSES, timeout)
        finally:
            self.clock.auto_advance = previous

    async def wait_for(
        self, instance_id: str, statuses: Iterable[str], timeout: float = 5.0
    ) -> InstanceStatus:
        return await self.engine.wait_for_status(instance_id, statuses, timeout)

    async def advance(self, delta: timedelta) -> None:
        """Move the virtual clock forward (due timers fire)."""
        self.clock.advance(delta)
        await asyncio.sleep(0)

    def activity_calls(self, name: str) -> list[Any]:
        """Decoded inputs of every invocation of activity ``name``, in call order."""
        found = self._calls.get(name)
        if found is None:  # durable function names are case-insensitive
            found = next((calls for key, calls in self._calls.items() if key.lower() == name.lower()), [])
        return list(found)

    def status(self, instance_id: str) -> InstanceStatus | None:
        return self.engine.get_status(instance_id)

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        return self.engine.get_history(instance_id)

    @staticmethod
    def output(status: InstanceStatus) -> Any:
        """The status output as the status API shows it: parsed JSON, else the raw text."""
        if status.output_text is None:
            return None
        try:
            return json.loads(status.output_text)
        except ValueError:
            return status.output_text

    @property
    def now(self) -> datetime:
        return self.clock.now()


def _replacement(value: Any) -> Callable[..., Any]:
    if callable(value):
        return value

    def constant(_input: Any) -> Any:
        if isinstance(value, BaseException):
            raise value
        return value

    return constant


def _observed(
    registry: FunctionRegistry, overrides: Mapping[str, Any], calls: dict[str, list[Any]]
) -> FunctionRegistry:
    """A copy of ``registry`` whose activities record their inputs (and are replaced when asked)."""
    activities: dict[str, Activity] = {}
    names = list(registry.activities) + [n for n in overrides if registry.find_activity(n) is None]
    for name in names:
        original = registry.find_activity(name)
        input_name = original.input_name if original else "input"
        override = next((v for k, v in overrides.items() if k.lower() == name.lower()), None)
        has_override = any(k.lower() == name.lower() for k in overrides)
        if has_override:
            target = _replacement(override)

            def call(target: Callable[..., Any] = target, input_name: str = input_name, **kwargs: Any) -> Any:
                return target(kwargs[input_name])

            is_async = inspect.iscoroutinefunction(target)
        else:
            assert original is not None
            call = original.function
            is_async = original.is_async
        log = calls.setdefault(name, [])
        wrapper = _recording(call, is_async, input_name, log)
        entry = (
            original.entry
            if original
            else FunctionEntry(name, ({"type": "activityTrigger", "name": input_name},), wrapper, is_async)
        )
        activities[name] = Activity(
            name, replace(entry, user_function=wrapper, is_async=is_async), input_name
        )
    return replace(registry, activities=activities)


def _recording(
    call: Callable[..., Any], is_async: bool, input_name: str, log: list[Any]
) -> Callable[..., Any]:
    if is_async:

        async def record_async(**kwargs: Any) -> Any:
            log.append(kwargs.get(input_name))
            return await call(**kwargs)

        return record_async

    def record(**kwargs: Any) -> Any:
        log.append(kwargs.get(input_name))
        return call(**kwargs)

    return record


@pytest.fixture
def durable_host_factory(tmp_path: Path) -> Iterator[Callable[..., DurableTestHost]]:
    """Factory of DurableTestHost objects, each with its own state directory under ``tmp_path``."""
    counter = itertools.count()

    def factory(app: FunctionApp, **kwargs: Any) -> DurableTestHost:
        return DurableTestHost(app, tmp_path / f"devhost-{next(counter)}", **kwargs)

    yield factory
