"""Run orchestrator episodes and activities with bounded concurrency.

Orchestrator invocations are CPU-bound and synchronous (the SDK handle), so they run in a thread
pool; async activities run on the event loop, sync ones in a separate thread pool, all bounded by
``max_concurrent_activities`` like the host's ``maxConcurrentActivityFunctions``.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import json
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.functions._durable_functions import df_dumps, df_loads

from devhost import protocol
from devhost.registry import Activity


@dataclass(frozen=True)
class OrchestratorRun:
    reply: protocol.OrchestratorReply
    replay: protocol.ReplayResult
    stack: str


def run_orchestrator(
    handle: Callable[[str], str], request: str, history: list[dict[str, Any]]
) -> OrchestratorRun:
    """Invoke the SDK handle with the request JSON, then replay its actions against the history."""
    stack = ""
    try:
        reply = protocol.parse_orchestrator_reply(handle(request), None)
    except Exception as exc:
        reply = protocol.parse_orchestrator_reply(None, exc)
        cause = exc.__cause__ or exc
        stack = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__)).rstrip()
    replay = protocol.replay_actions(history, reply.actions)
    return OrchestratorRun(reply, replay, stack)


@dataclass(frozen=True)
class ActivityOutcome:
    succeeded: bool
    result_text: str | None = None
    reason: str | None = None
    details: str | None = None


def decode_activity_input(text: str | None) -> Any:
    """What the worker's ActivityTriggerConverter hands the function (§5)."""
    if text is None:
        return None
    try:
        return df_loads(text)
    except json.JSONDecodeError:
        return text
    except Exception as error:
        raise ValueError(
            f"activity trigger input must be a string or a valid json serializable ({text})"
        ) from error


def encode_activity_output(value: Any) -> str:
    try:
        return str(df_dumps(value))
    except TypeError as error:
        raise ValueError(f"activity trigger output must be json serializable ({value})") from error


class FunctionTimeoutException(Exception):
    """An activity ran past host.json `functionTimeout` (the host's exception type name)."""


class ActivityRunner:
    def __init__(self, max_concurrent: int, timeout: timedelta | None = None) -> None:
        self._slots = asyncio.Semaphore(max_concurrent)
        self._pool = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="devhost-activity")
        self._timeout = timeout

    async def run(self, activity: Activity, input_text: str | None) -> ActivityOutcome:
        async with self._slots:
            try:
                try:
                    limit = self._timeout.total_seconds() if self._timeout else None
                    async with asyncio.timeout(limit) as budget:
                        result = await self._call(activity, input_text)
                except TimeoutError:
                    if not budget.expired():
                        raise  # the activity's own TimeoutError
                    # As on the host: the invocation fails; a sync activity's thread cannot be stopped.
                    raise FunctionTimeoutException(
                        f"Timeout value of {timespan_text(self._timeout)} exceeded by function "
                        f"'Functions.{activity.name}'. Initiating cancellation."
                    ) from None
                return ActivityOutcome(True, result_text=encode_activity_output(result))
            except Exception as exc:
                return ActivityOutcome(
                    False,
                    reason=protocol.activity_failure_reason(activity.name, exc),
                    details=protocol.activity_failure_details(exc),
                )

    async def _call(self, activity: Activity, input_text: str | None) -> Any:
        kwargs = {activity.input_name: decode_activity_input(input_text)}
        if activity.is_async:
            result = await activity.function(**kwargs)
        else:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._pool, functools.partial(activity.function, **kwargs))
        return await result if inspect.isawaitable(result) else result

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def timespan_text(value: timedelta | None) -> str:
    """A duration as the host writes it in timeout messages: HH:MM:SS."""
    seconds = int(value.total_seconds()) if value else 0
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class OrchestratorRunner:
    def __init__(self, max_concurrent: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="devhost-orchestrator")
        install_fast_timestamp_parsing()

    async def run(
        self, handle: Callable[[str], str], request: str, history: list[dict[str, Any]]
    ) -> OrchestratorRun:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, run_orchestrator, handle, request, history)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------------------------------------
# The SDK parses every history Timestamp with dateutil on every episode: 85% of an episode's cost for
# large histories. This equivalent parser returns the very same values (aware datetimes with
# dateutil's tzutc) for the host's "...Z" timestamps and falls back to dateutil for anything else.
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def _fast_parse(text: str) -> datetime:
    from dateutil.parser import parse as dateutil_parse
    from dateutil.tz import tzutc

    if text.endswith("Z") and "T" in text:
        try:
            moment = protocol.parse_timestamp(text)
        except ValueError:
            return dateutil_parse(text)
        return moment.replace(tzinfo=tzutc())
    return dateutil_parse(text)


def _fast_parse_uncached(text: str, *args: Any, **kwargs: Any) -> datetime:
    if args or kwargs:
        from dateutil.parser import parse as dateutil_parse

        return dateutil_parse(text, *args, **kwargs)
    return _fast_parse(text)


def install_fast_timestamp_parsing() -> None:
    module = importlib.import_module("azure.durable_functions.models.history.HistoryEvent")
    if getattr(module, "dt_parse", None) is not _fast_parse_uncached:
        module.dt_parse = _fast_parse_uncached
