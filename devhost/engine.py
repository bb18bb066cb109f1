"""The orchestration engine: episodes, work scheduling, instance lifecycle (durable-protocol.md §4, §8).

Each instance is processed by at most one episode at a time. An episode takes every message that
is due for the instance, appends ``[OrchestratorStarted, messages...]`` to its history, asks the SDK
for the cumulative actions, replays them (``protocol.replay_actions``) to find the new decisions, and
commits history, status and new work in one SQLite transaction.

Known simplifications against the Azure Storage backend: a timer the orchestrator cancelled during
replay still gets its TimerCreated event but is never delivered (DTFx delivers a harmless
TimerFired later); continue_as_new goes straight from Running to Running (the transient
ContinuedAsNew status is not shown) and drops the finished execution's history.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from devhost import protocol
from devhost.clock import Clock, SystemClock, VirtualClock
from devhost.protocol import EventType
from devhost.registry import FunctionRegistry, Orchestrator
from devhost.status import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    InstanceAlreadyRunning,
    InstanceGone,
    InstanceNotFound,
    InstanceStatus,
    InvalidInstanceState,
    RuntimeStatus,
)
from devhost.store import (
    EpisodeWrite,
    InstanceRecord,
    Message,
    NewMessage,
    NewWorkItem,
    Store,
    WorkItem,
    from_micros,
    to_micros,
)
from devhost.workers import ActivityOutcome, ActivityRunner, OrchestratorRun, OrchestratorRunner

__all__ = [
    "Engine",
    "InstanceAlreadyRunning",
    "InstanceGone",
    "InstanceNotFound",
    "InstanceStatus",
    "InvalidInstanceState",
    "RuntimeStatus",
]

_ONE_MICROSECOND = timedelta(microseconds=1)
_MAX_COALESCE_SECONDS = 0.5


@dataclass
class _History:
    """In-memory copy of an execution's persisted history (texts avoid re-encoding every episode)."""

    execution_id: str
    texts: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    last_started: datetime | None = None

    def append(self, events: Iterable[dict[str, Any]]) -> list[str]:
        texts = []
        for event in events:
            text = json.dumps(event)
            texts.append(text)
            self.texts.append(text)
            self.events.append(event)
            if event["EventType"] == EventType.ORCHESTRATOR_STARTED:
                self.last_started = protocol.parse_timestamp(event["Timestamp"])
        return texts

    @property
    def next_event_id(self) -> int:
        return sum(
            1
            for e in self.events
            if e.get("EventId", -1) >= 0 and e["EventType"] != EventType.EXECUTION_COMPLETED
        )

    def execution_started(self) -> dict[str, Any] | None:
        return next((e for e in self.events if e["EventType"] == EventType.EXECUTION_STARTED), None)


def _kind(message_event: dict[str, Any]) -> int:
    return int(message_event["EventType"])


def _played(event: dict[str, Any]) -> dict[str, Any]:
    """The copy the host persists: message events are IsPlayed=true once processed (§2.2)."""
    if event["EventType"] in protocol.MESSAGE_EVENT_TYPES:
        return {**event, "IsPlayed": True}
    return event


class Engine:
    """Runs the orchestrations and activities of one function app against a state directory."""

    def __init__(
        self,
        registry: FunctionRegistry,
        state_dir: Path,
        *,
        clock: Clock | None = None,
        max_concurrent_activities: int | None = None,
        max_concurrent_orchestrators: int | None = None,
        logger: logging.Logger | None = None,
        activity_timeout: timedelta | None = None,
    ) -> None:
        cpus = os.cpu_count() or 1
        self.registry = registry
        self.state_dir = Path(state_dir)
        self.clock: Clock = clock or SystemClock()
        self.max_concurrent_activities = max_concurrent_activities or 10 * cpus
        self.max_concurrent_orchestrators = max_concurrent_orchestrators or 10 * cpus
        self.log = logger or logging.getLogger("devhost.engine")
        # host.json functionTimeout: an activity running longer fails, as on the Functions host.
        self.activity_timeout = activity_timeout
        self._store: Store | None = Store(self.state_dir)
        self._cache: dict[str, _History] = {}
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._running: set[str] = set()
        self._dirty: set[str] = set()
        self._background: list[asyncio.Task[None]] = []
        self._activity_tasks: set[asyncio.Task[None]] = set()
        self._completions: list[tuple[int, NewMessage]] = []
        self._flush_scheduled = False
        self._timers_changed = asyncio.Event()
        self._changed = asyncio.Event()
        # Per instance: activities in flight, set when they all finished, and the last episode's cost.
        self._inflight: dict[str, int] = {}
        self._drained: dict[str, asyncio.Event] = {}
        self._episode_cost: dict[str, float] = {}
        self._activities: ActivityRunner | None = None
        self._orchestrators: OrchestratorRunner | None = None
        self._started = False

    # =========================================================================== lifecycle
    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.state_dir)
        return self._store

    @property
    def is_running(self) -> bool:
        return self._started

    async def start(self) -> None:
        """Start the workers and resume every in-flight instance and activity from the store."""
        if self._started:
            return
        self._started = True
        self._timers_changed = asyncio.Event()
        self._changed = asyncio.Event()
        self._activities = ActivityRunner(self.max_concurrent_activities, self.activity_timeout)
        self._orchestrators = OrchestratorRunner(self.max_concurrent_orchestrators)
        if isinstance(self.clock, VirtualClock):
            self.clock.set_idle_probe(self._is_idle)
        self._background = [
            asyncio.create_task(self._orchestration_worker(), name=f"devhost-orch-{i}")
            for i in range(self.max_concurrent_orchestrators)
        ]
        self._background.append(asyncio.create_task(self._timer_loop(), name="devhost-timers"))
        orphaned = []
        for work in self.store.work_items():
            owner = self.store.get_instance(work.instance_id)
            if (
                owner is None
                or owner.execution_id != work.execution_id
                or owner.runtime_status in TERMINAL_STATUSES
            ):
                orphaned.append(work.id)  # its result could only be discarded
            else:
                self._dispatch_activity(work)
        self.store.delete_work(orphaned)
        for instance_id in self.store.instances_with_due_messages(to_micros(self.clock.now())):
            self._wake(instance_id)
        self._check_idle()

    async def stop(self) -> None:
        """Stop all work; anything not committed is redone by the next start."""
        if not self._started:
            if self._store is not None:
                self._store.close()
                self._store = None
            return
        self._started = False
        tasks = [*self._background, *self._activity_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._completions:
            self._flush_completions()
        self._background = []
        self._activity_tasks.clear()
        if self._activities:
            self._activities.shutdown()
        if self._orchestrators:
            self._orchestrators.shutdown()
        if isinstance(self.clock, VirtualClock):
            self.clock.set_idle_probe(None)
        self._ready = asyncio.Queue()
        self._queued.clear()
        self._running.clear()
        self._dirty.clear()
        self._cache.clear()
        if self._store is not None:
            self._store.close()
            self._store = None

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # =========================================================================== client API
    def _now_text(self) -> tuple[datetime, str]:
        now = self.clock.now()
        return now, protocol.format_timestamp(now)

    async def start_new(
        self, name: str, instance_id: str | None = None, input_text: str | None = None
    ) -> str:
        """Start an orchestration; ``input_text`` is the exact ExecutionStarted.Input text."""
        orchestrator = self.registry.find_orchestrator(name)
        if orchestrator is None:
            raise ValueError(
                protocol.unknown_function_text(name, "orchestrator", self.registry.orchestrators)
            )
        if instance_id is None:
            instance_id = uuid.uuid4().hex
        error = protocol.instance_id_error(instance_id)
        if error:
            raise ValueError(error)
        existing = self.store.get_instance(instance_id)
        if existing is not None and existing.runtime_status in ACTIVE_STATUSES:
            raise InstanceAlreadyRunning(
                f"An Orchestration instance with the status {existing.runtime_status} already exists."
            )
        generation = existing.generation + 1 if existing is not None else 0
        execution_id = uuid.uuid4().hex
        now, stamp = self._now_text()
        record = InstanceRecord(
            instance_id,
            orchestrator.name,
            execution_id,
            RuntimeStatus.PENDING,
            input_text,
            None,
            None,
            now,
            now,
            generation,
        )
        started = protocol.execution_started(
            stamp,
            instance_id=instance_id,
            execution_id=execution_id,
            name=orchestrator.name,
            input_text=input_text,
            generation=generation,
        )
        self.store.create_instance(record, NewMessage(instance_id, execution_id, json.dumps(started)))
        self._cache.pop(instance_id, None)
        self._notify_changed()
        self._wake(instance_id)
        return instance_id

    def _require(self, instance_id: str, *, allow_terminal: bool = False) -> InstanceRecord:
        record = self.store.get_instance(instance_id)
        if record is None:
            raise InstanceNotFound(f"No instance with ID '{instance_id}' found.")
        if not allow_terminal and record.runtime_status in TERMINAL_STATUSES:
            raise InstanceGone(
                f"Instance with ID '{instance_id}' is gone: either completed or failed "
                f"(status {record.runtime_status})."
            )
        return record

    def _send(self, instance_id: str, event: dict[str, Any]) -> None:
        self.store.add_message(NewMessage(instance_id, None, json.dumps(event)))
        self._wake(instance_id)

    async def raise_event(self, instance_id: str, name: str, input_text: str | None) -> None:
        """Deliver an external event; ``input_text`` becomes EventRaised.Input as given."""
        self._require(instance_id)
        self._send(instance_id, protocol.event_raised(self._now_text()[1], name, input_text))

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        self._require(instance_id)
        self._send(instance_id, protocol.execution_terminated(self._now_text()[1], reason))

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        record = self._require(instance_id)
        if record.runtime_status == RuntimeStatus.SUSPENDED:
            raise InvalidInstanceState(f"Instance '{instance_id}' is already suspended.")
        self._send(instance_id, protocol.execution_suspended(self._now_text()[1], reason))

    async def resume(self, instance_id: str, reason: str | None) -> None:
        record = self._require(instance_id)
        if record.runtime_status != RuntimeStatus.SUSPENDED:
            raise InvalidInstanceState(
                f"Instance '{instance_id}' cannot be resumed: its status is {record.runtime_status}."
            )
        self._send(instance_id, protocol.execution_resumed(self._now_text()[1], reason))

    async def restart(self, instance_id: str, *, new_instance_id: bool = True) -> str:
        record = self.store.get_instance(instance_id)
        if record is None:
            raise InstanceNotFound("InstanceId does not match a valid orchestration instance.")
        target = uuid.uuid4().hex if new_instance_id else instance_id
        return await self.start_new(record.name, target, record.input_text)

    async def purge(self, instance_id: str) -> int:
        deleted = self.store.purge(instance_id)
        self._cache.pop(instance_id, None)
        if deleted:
            self._notify_changed()
        return deleted

    async def purge_by(
        self,
        created_from: datetime,
        created_to: datetime | None = None,
        statuses: Iterable[str] | None = None,
    ) -> int:
        """Purge instances created in the range; like Azure Storage, only terminal statuses are purged."""
        wanted = (
            TERMINAL_STATUSES
            if statuses is None
            else [RuntimeStatus(s) for s in statuses if RuntimeStatus(s) in TERMINAL_STATUSES]
        )
        ids = self.store.purge_by(
            created_from=created_from, created_to=created_to or self.clock.now(), statuses=wanted
        )
        for instance_id in ids:
            self._cache.pop(instance_id, None)
        if ids:
            self._notify_changed()
        return len(ids)

    def get_status(self, instance_id: str) -> InstanceStatus | None:
        record = self.store.get_instance(instance_id)
        return record.to_status() if record else None

    def list_instances(
        self,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        statuses: Iterable[str] | None = None,
        prefix: str | None = None,
        top: int | None = None,
        continuation: str | None = None,
    ) -> tuple[list[InstanceStatus], str | None]:
        records, token = self.store.list_instances(
            created_from=created_from,
            created_to=created_to,
            statuses=statuses,
            prefix=prefix,
            top=top,
            continuation=continuation,
        )
        return [r.to_status() for r in records], token

    def get_history(self, instance_id: str) -> list[dict[str, Any]]:
        """All events of the instance's current execution, with the host's field names."""
        return [json.loads(text) for text in self.store.load_history(instance_id)]

    async def wait_for_status(
        self, instance_id: str, statuses: Iterable[str], timeout: float
    ) -> InstanceStatus:
        wanted = {RuntimeStatus(s) for s in statuses}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            status = self.get_status(instance_id)
            if status is not None and status.runtime_status in wanted:
                return status
            remaining = deadline - loop.time()
            if remaining <= 0:
                shown = status.runtime_status if status else "not found"
                raise TimeoutError(
                    f"Instance '{instance_id}' did not reach {sorted(wanted)} within {timeout}s "
                    f"(status: {shown})."
                )
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                continue

    # =========================================================================== scheduling
    def _notify_changed(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _wake(self, instance_id: str) -> None:
        if not self._started:
            return
        if instance_id in self._running:
            self._dirty.add(instance_id)
        elif instance_id not in self._queued:
            self._queued.add(instance_id)
            self._ready.put_nowait(instance_id)

    def _is_idle(self) -> bool:
        # A new timer the timer loop has not re-armed for yet counts as work: a virtual clock must not
        # jump past it to an older, later wake-up.
        return not (
            self._queued
            or self._running
            or self._activity_tasks
            or self._completions
            or self._timers_changed.is_set()
        )

    def _check_idle(self) -> None:
        if self._started and self._is_idle():
            self.clock.notify_idle()

    async def _orchestration_worker(self) -> None:
        while True:
            instance_id = await self._ready.get()
            self._queued.discard(instance_id)
            self._running.add(instance_id)
            again = False
            try:
                await self._coalesce(instance_id)
                again = await self._process(instance_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("devhost: episode of instance %s failed in the host", instance_id)
            finally:
                self._running.discard(instance_id)
            if again or instance_id in self._dirty:
                self._dirty.discard(instance_id)
                self._wake(instance_id)
            self._check_idle()

    async def _coalesce(self, instance_id: str) -> None:
        """Let results of activities still running join this episode, for at most one episode's cost.

        Every episode replays the whole history through the SDK, so a fan-in of N results must not
        become N episodes. Waiting no longer than the previous episode took bounds the added latency.
        """
        if not self._inflight.get(instance_id):
            return
        budget = min(self._episode_cost.get(instance_id, 0.0), _MAX_COALESCE_SECONDS)
        if budget <= 0.001:
            return
        drained = self._drained.setdefault(instance_id, asyncio.Event())
        drained.clear()
        if self._inflight.get(instance_id):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drained.wait(), budget)

    async def _timer_loop(self) -> None:
        while True:
            try:
                await self._timer_step()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("devhost: timer loop error; retrying")
                await asyncio.sleep(0.5)

    async def _timer_step(self) -> None:
        """Wake instances whose messages are due, then sleep until the next timer or a new one."""
        self._timers_changed.clear()
        now_us = to_micros(self.clock.now())
        for instance_id in self.store.instances_with_due_messages(now_us):
            self._wake(instance_id)
        self._check_idle()
        next_due = self.store.next_due_after(now_us)
        waits: list[asyncio.Task[Any]] = [asyncio.create_task(self._timers_changed.wait())]
        if next_due is not None:
            waits.append(asyncio.create_task(self.clock.sleep_until(from_micros(next_due))))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    # =========================================================================== activities
    def _dispatch_activity(self, work: WorkItem) -> None:
        self._inflight[work.instance_id] = self._inflight.get(work.instance_id, 0) + 1
        task = asyncio.create_task(self._run_activity(work), name=f"devhost-activity-{work.name}")
        self._activity_tasks.add(task)
        task.add_done_callback(self._activity_done)

    def _activity_done(self, task: asyncio.Task[None]) -> None:
        self._activity_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("devhost: activity runner crashed", exc_info=task.exception())
        self._check_idle()

    def _activity_finished(self, instance_id: str) -> None:
        left = self._inflight.get(instance_id, 1) - 1
        if left > 0:
            self._inflight[instance_id] = left
            return
        self._inflight.pop(instance_id, None)
        drained = self._drained.pop(instance_id, None)
        if drained is not None:
            drained.set()

    async def _run_activity(self, work: WorkItem) -> None:
        try:
            await self._execute_activity(work)
        finally:
            self._activity_finished(work.instance_id)

    async def _execute_activity(self, work: WorkItem) -> None:
        activity = self.registry.find_activity(work.name)
        if activity is None or self._activities is None:
            known = self.registry.activities
            outcome = ActivityOutcome(
                False, reason=protocol.unknown_function_text(work.name, "activity", known)
            )
        else:
            outcome = await self._activities.run(activity, work.input_text)
        stamp = self._now_text()[1]
        if outcome.succeeded:
            event = protocol.task_completed(stamp, work.task_id, outcome.result_text)
        else:
            event = protocol.task_failed(stamp, work.task_id, outcome.reason or "", outcome.details)
        self._completions.append(
            (work.id, NewMessage(work.instance_id, work.execution_id, json.dumps(event)))
        )
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_completions)

    def _flush_completions(self) -> None:
        """Commit every activity result gathered in this loop turn in one transaction."""
        self._flush_scheduled = False
        batch, self._completions = self._completions, []
        if not batch or self._store is None:
            return
        for instance_id in dict.fromkeys(self.store.complete_work(batch)):
            self._wake(instance_id)
        self._check_idle()

    # =========================================================================== episodes
    def _history(self, record: InstanceRecord) -> _History:
        cached = self._cache.get(record.instance_id)
        if cached is not None and cached.execution_id == record.execution_id:
            return cached
        history = _History(record.execution_id)
        for text in self.store.load_history(record.instance_id):
            event = json.loads(text)
            history.texts.append(text)
            history.events.append(event)
            if event["EventType"] == EventType.ORCHESTRATOR_STARTED:
                history.last_started = protocol.parse_timestamp(event["Timestamp"])
        self._cache[record.instance_id] = history
        return history

    def _episode_time(self, history: _History) -> tuple[datetime, str]:
        # Strictly increasing OrchestratorStarted times keep current_utc_datetime and new_uuid unique.
        now = self.clock.now()
        if history.last_started is not None and now <= history.last_started:
            now = history.last_started + _ONE_MICROSECOND
        return now, protocol.format_timestamp(now)

    async def _process(self, instance_id: str) -> bool:
        """Run at most one episode; True if more due messages may be waiting for another one."""
        record = self.store.get_instance(instance_id)
        messages = self.store.pending_messages(instance_id, to_micros(self.clock.now()))
        if not messages:
            return False
        if record is None or record.runtime_status in TERMINAL_STATUSES:
            # Events for finished or purged instances are discarded, as the host does.
            self.store.delete_messages([m.id for m in messages])
            self._cache.pop(instance_id, None)
            return False
        stale = [m.id for m in messages if m.execution_id not in (None, record.execution_id)]
        live = [
            (m, json.loads(m.event_text)) for m in messages if m.execution_id in (None, record.execution_id)
        ]
        if not live:
            self.store.delete_messages(stale)
            return False
        terminate = next((e for _, e in live if _kind(e) == EventType.EXECUTION_TERMINATED), None)
        if terminate is not None:
            await self._terminate_episode(record, live, stale, terminate)
            return False
        if record.runtime_status == RuntimeStatus.SUSPENDED:
            return await self._resume_or_wait(record, live, stale)
        first_suspend = next(
            (i for i, (_, e) in enumerate(live) if _kind(e) == EventType.EXECUTION_SUSPENDED), None
        )
        if first_suspend == 0:
            await self._suspend_episode(record, live[0], stale)
            return len(live) > 1
        batch = live if first_suspend is None else live[:first_suspend]
        await self._episode(record, batch, stale)
        return first_suspend is not None

    async def _resume_or_wait(
        self, record: InstanceRecord, live: list[tuple[Message, dict[str, Any]]], stale: list[int]
    ) -> bool:
        resume_at = next(
            (i for i, (_, e) in enumerate(live) if _kind(e) == EventType.EXECUTION_RESUMED), None
        )
        if resume_at is None:
            self.store.delete_messages(stale)
            return False  # events stay buffered until resume (§4.5)
        ignored = [m.id for m, e in live[:resume_at] if _kind(e) == EventType.EXECUTION_SUSPENDED]
        later_suspend = next(
            (
                i
                for i in range(resume_at + 1, len(live))
                if _kind(live[i][1]) == EventType.EXECUTION_SUSPENDED
            ),
            None,
        )
        end = len(live) if later_suspend is None else later_suspend
        # ExecutionResumed first, then the events buffered while suspended (§4.5).
        batch = [live[resume_at]] + [
            (m, e)
            for i, (m, e) in enumerate(live[:end])
            if i != resume_at and _kind(e) != EventType.EXECUTION_SUSPENDED
        ]
        await self._episode(record, batch, stale + ignored)
        return later_suspend is not None

    async def _suspend_episode(
        self, record: InstanceRecord, message: tuple[Message, dict[str, Any]], stale: list[int]
    ) -> None:
        history = self._history(record)
        now, stamp = self._episode_time(history)
        reason = message[1].get("Reason")
        events = [
            protocol.orchestrator_started(stamp),
            _played({**message[1], "IsPlayed": False}),
            protocol.orchestrator_completed(stamp),
        ]
        updated = replace(
            record, runtime_status=RuntimeStatus.SUSPENDED, output_text=reason, last_updated_time=now
        )
        self._commit(
            EpisodeWrite(
                updated,
                record.execution_id,
                len(history.texts),
                history.append(events),
                consumed_message_ids=[message[0].id, *stale],
            ),
            history,
        )

    async def _terminate_episode(
        self,
        record: InstanceRecord,
        live: list[tuple[Message, dict[str, Any]]],
        stale: list[int],
        terminate: dict[str, Any],
    ) -> None:
        history = self._history(record)
        now, stamp = self._episode_time(history)
        reason = terminate.get("Input")
        events = [protocol.orchestrator_started(stamp)]
        if history.execution_started() is None:
            events += [_played(e) for _, e in live if _kind(e) == EventType.EXECUTION_STARTED]
        events += [
            _played(terminate),
            protocol.execution_completed(
                stamp, history.next_event_id, protocol.OrchestrationStatus.TERMINATED, reason
            ),
            protocol.orchestrator_completed(stamp),
        ]
        updated = replace(
            record,
            runtime_status=RuntimeStatus.TERMINATED,
            output_text=reason,
            last_updated_time=now,
            failure_details=None,
        )
        write = EpisodeWrite(
            updated,
            record.execution_id,
            len(history.texts),
            history.append(events),
            consumed_message_ids=[m.id for m, _ in live] + stale,
        )
        self._notify_parent(write, record, stamp, succeeded=False, result=reason, details=None)
        self._commit(write, history)

    async def _episode(
        self, record: InstanceRecord, batch: list[tuple[Message, dict[str, Any]]], stale: list[int]
    ) -> None:
        history = self._history(record)
        now, stamp = self._episode_time(history)
        incoming = [e for _, e in batch]
        if history.execution_started() is None and not any(
            _kind(e) == EventType.EXECUTION_STARTED for e in incoming
        ):
            # Nothing can run before ExecutionStarted; keep the events for when it arrives.
            return
        new_events = [protocol.orchestrator_started(stamp), *({**e, "IsPlayed": False} for e in incoming)]
        consumed = [m.id for m, _ in batch] + stale
        orchestrator = self.registry.find_orchestrator(record.name)
        started = history.execution_started() or next(
            e for e in incoming if _kind(e) == EventType.EXECUTION_STARTED
        )
        if orchestrator is None:
            text = protocol.unknown_function_text(record.name, "orchestrator", self.registry.orchestrators)
            self._fail_now(record, history, now, stamp, new_events, consumed, text, None)
            return
        request = protocol.build_orchestrator_request_from_texts(
            [*history.texts, *(json.dumps(e) for e in new_events)],
            instance_id=record.instance_id,
            input_text=started.get("Input"),
            parent_instance_id=record.parent_instance_id,
            is_replaying=history.execution_started() is not None,
        )
        assert self._orchestrators is not None
        began = time.perf_counter()
        run = await self._orchestrators.run(orchestrator.handle, request, [*history.events, *new_events])
        self._episode_cost[record.instance_id] = time.perf_counter() - began
        self._apply(record, orchestrator, history, now, stamp, new_events, consumed, run, batch)

    def _host_failure(self, record: InstanceRecord, run: OrchestratorRun) -> str | None:
        """Errors the host raises itself, which fail the instance at once (§3.4, §9.1)."""
        replay, reply = run.replay, run.reply
        if replay.unsupported:
            return protocol.orchestrator_failure_text(record.name, replay.unsupported)
        if replay.host_error:
            return protocol.orchestrator_failure_text(record.name, replay.host_error)
        if replay.nondeterminism is not None:
            return replay.nondeterminism.message
        for decision in replay.decisions:
            if (
                isinstance(decision, protocol.ScheduleActivity)
                and self.registry.find_activity(decision.name) is None
            ):
                return protocol.orchestrator_failure_text(
                    record.name,
                    protocol.unknown_function_text(decision.name, "activity", self.registry.activities),
                )
            if (
                isinstance(decision, protocol.CreateSubOrchestration)
                and self.registry.find_orchestrator(decision.name) is None
            ):
                return protocol.orchestrator_failure_text(
                    record.name,
                    protocol.unknown_function_text(
                        decision.name, "orchestrator", self.registry.orchestrators
                    ),
                )
        if reply.has_custom_status:
            size_error = protocol.custom_status_size_error(protocol.compact_json(reply.custom_status))
            if size_error:
                return protocol.orchestrator_failure_text(record.name, size_error)
        return None

    def _fail_now(
        self,
        record: InstanceRecord,
        history: _History,
        now: datetime,
        stamp: str,
        new_events: list[dict[str, Any]],
        consumed: list[int],
        text: str,
        custom_status: str | None,
    ) -> None:
        """Fail at once; the episode's decisions are dropped (the host threw before recording them)."""
        details = protocol.orchestrator_failure_details(text)
        events = [
            *(_played(e) for e in new_events),
            protocol.execution_completed(
                stamp, history.next_event_id, protocol.OrchestrationStatus.FAILED, text
            ),
            protocol.orchestrator_completed(stamp),
        ]
        updated = replace(
            record,
            runtime_status=RuntimeStatus.FAILED,
            output_text=text,
            last_updated_time=now,
            failure_details=details,
            custom_status_text=custom_status,
        )
        write = EpisodeWrite(
            updated,
            record.execution_id,
            len(history.texts),
            history.append(events),
            consumed_message_ids=consumed,
        )
        self._notify_parent(write, record, stamp, succeeded=False, result=text, details=details)
        self._commit(write, history)

    def _apply(
        self,
        record: InstanceRecord,
        orchestrator: Orchestrator,
        history: _History,
        now: datetime,
        stamp: str,
        new_events: list[dict[str, Any]],
        consumed: list[int],
        run: OrchestratorRun,
        batch: list[tuple[Message, dict[str, Any]]],
    ) -> None:
        reply, replay = run.reply, run.replay
        custom_status = protocol.compact_json(reply.custom_status) if reply.has_custom_status else None
        failure = self._host_failure(record, run)
        if failure is not None:
            self._fail_now(
                record, history, now, stamp, new_events, consumed, failure, record.custom_status_text
            )
            return
        events = [_played(e) for e in new_events]
        write = EpisodeWrite(
            record, record.execution_id, len(history.texts), [], consumed_message_ids=consumed
        )
        continue_as_new: protocol.ContinueAsNew | None = None
        for decision in replay.decisions:
            if isinstance(decision, protocol.ContinueAsNew):
                continue_as_new = decision
            else:
                events.append(self._schedule(decision, record, stamp, write))
        updated = replace(
            record,
            custom_status_text=custom_status,
            last_updated_time=now,
            runtime_status=RuntimeStatus.RUNNING,
        )
        resumed = [e for _, e in batch if _kind(e) == EventType.EXECUTION_RESUMED]
        if resumed:
            updated.output_text = resumed[-1].get("Reason")
        finished = (reply.is_done or reply.error is not None) and not replay.open_tasks
        if finished and reply.error is not None:
            text = protocol.orchestrator_failure_text(orchestrator.name, reply.error)
            details = protocol.orchestrator_failure_details(reply.error, run.stack)
            events.append(
                protocol.execution_completed(
                    stamp, replay.next_event_id, protocol.OrchestrationStatus.FAILED, text
                )
            )
            updated = replace(
                updated, runtime_status=RuntimeStatus.FAILED, output_text=text, failure_details=details
            )
            self._notify_parent(write, record, stamp, succeeded=False, result=text, details=details)
        elif finished and continue_as_new is not None:
            self._continue_as_new(write, updated, continue_as_new, stamp, now)
            self._commit(write, history)
            return
        elif finished:
            events.append(
                protocol.execution_completed(
                    stamp, replay.next_event_id, protocol.OrchestrationStatus.COMPLETED, reply.output_text
                )
            )
            updated = replace(updated, runtime_status=RuntimeStatus.COMPLETED, output_text=reply.output_text)
            self._notify_parent(write, record, stamp, succeeded=True, result=reply.output_text, details=None)
        events.append(protocol.orchestrator_completed(stamp))
        write.instance = updated
        write.history_texts = history.append(events)
        self._commit(write, history)

    def _schedule(
        self, decision: protocol.Decision, record: InstanceRecord, stamp: str, write: EpisodeWrite
    ) -> dict[str, Any]:
        """Record one new decision's work in the episode write; return its scheduling event."""
        if isinstance(decision, protocol.ScheduleActivity):
            write.new_work.append(NewWorkItem(decision.event_id, decision.name, decision.input_text))
            return protocol.task_scheduled(stamp, decision.event_id, decision.name)
        if isinstance(decision, protocol.CreateTimer):
            if not decision.canceled:
                fired = protocol.timer_fired(stamp, decision.event_id, decision.fire_at)
                due = to_micros(protocol.parse_timestamp(decision.fire_at))
                write.new_messages.append(
                    NewMessage(record.instance_id, record.execution_id, json.dumps(fired), deliver_at=due)
                )
            return protocol.timer_created(stamp, decision.event_id, decision.fire_at)
        if isinstance(decision, protocol.CreateSubOrchestration):
            self._start_child(decision, record, stamp, write)
            return protocol.sub_orchestration_created(
                stamp, decision.event_id, decision.name, decision.instance_id
            )
        if isinstance(decision, protocol.SendEvent):
            return protocol.event_sent(
                stamp, decision.event_id, decision.instance_id, decision.name, decision.input_text
            )
        raise TypeError(f"unexpected decision {decision!r}")

    def _start_child(
        self,
        decision: protocol.CreateSubOrchestration,
        parent: InstanceRecord,
        stamp: str,
        write: EpisodeWrite,
    ) -> None:
        orchestrator = self.registry.find_orchestrator(decision.name)
        name = orchestrator.name if orchestrator else decision.name
        existing = self.store.get_instance(decision.instance_id)
        if existing is not None and existing.runtime_status not in TERMINAL_STATUSES:
            failed = protocol.sub_orchestration_failed(
                stamp,
                decision.event_id,
                f"An Orchestration instance with the status {existing.runtime_status} already exists.",
                None,
            )
            write.new_messages.append(NewMessage(parent.instance_id, parent.execution_id, json.dumps(failed)))
            return
        if existing is not None:
            write.replaced_instance_ids.append(existing.instance_id)
        execution_id = uuid.uuid4().hex
        # The action's input is a .NET string to the host, stored as a JSON string literal (§6.5).
        input_text = json.dumps(decision.input_text) if decision.input_text is not None else None
        moment = protocol.parse_timestamp(stamp)
        child = InstanceRecord(
            decision.instance_id,
            name,
            execution_id,
            RuntimeStatus.PENDING,
            input_text,
            None,
            None,
            moment,
            moment,
            existing.generation + 1 if existing else 0,
            parent.instance_id,
            parent.execution_id,
            parent.name,
            decision.event_id,
        )
        started = protocol.execution_started(
            stamp,
            instance_id=child.instance_id,
            execution_id=execution_id,
            name=name,
            input_text=input_text,
            parent=protocol.ParentInstance(
                parent.name, parent.instance_id, parent.execution_id, decision.event_id
            ),
            generation=child.generation,
        )
        write.new_instances.append(child)
        write.new_messages.append(NewMessage(child.instance_id, execution_id, json.dumps(started)))

    def _continue_as_new(
        self,
        write: EpisodeWrite,
        updated: InstanceRecord,
        decision: protocol.ContinueAsNew,
        stamp: str,
        now: datetime,
    ) -> None:
        execution_id = uuid.uuid4().hex
        input_text = json.dumps(decision.input_text) if decision.input_text is not None else None
        parent = None
        if updated.parent_instance_id and updated.parent_execution_id and updated.parent_task_id is not None:
            parent = protocol.ParentInstance(
                updated.parent_name or "",
                updated.parent_instance_id,
                updated.parent_execution_id,
                updated.parent_task_id,
            )
        generation = updated.generation + 1
        started = protocol.execution_started(
            stamp,
            instance_id=updated.instance_id,
            execution_id=execution_id,
            name=updated.name,
            input_text=input_text,
            parent=parent,
            generation=generation,
        )
        write.instance = replace(
            updated,
            execution_id=execution_id,
            generation=generation,
            input_text=input_text,
            output_text=None,
            created_time=now,
            runtime_status=RuntimeStatus.RUNNING,
        )
        write.drop_history = True
        write.history_texts = []
        write.new_messages.append(NewMessage(updated.instance_id, execution_id, json.dumps(started)))

    def _notify_parent(
        self,
        write: EpisodeWrite,
        record: InstanceRecord,
        stamp: str,
        *,
        succeeded: bool,
        result: str | None,
        details: str | None,
    ) -> None:
        if not record.parent_instance_id or record.parent_task_id is None:
            return
        if succeeded:
            event = protocol.sub_orchestration_completed(stamp, record.parent_task_id, result)
        else:
            event = protocol.sub_orchestration_failed(stamp, record.parent_task_id, result, details)
        write.new_messages.append(
            NewMessage(record.parent_instance_id, record.parent_execution_id, json.dumps(event))
        )

    def _commit(self, write: EpisodeWrite, history: _History) -> None:
        instance_id = write.instance.instance_id
        write.drop_timers = write.drop_history or write.instance.runtime_status in TERMINAL_STATUSES
        try:
            work = self.store.commit_episode(write)
        except BaseException:
            self._cache.pop(instance_id, None)  # the cached history already holds the uncommitted events
            raise
        if work is None:
            self._cache.pop(instance_id, None)  # purged or replaced meanwhile
            return
        if write.drop_history or write.instance.runtime_status in TERMINAL_STATUSES:
            self._cache.pop(instance_id, None)
            self._episode_cost.pop(instance_id, None)
        if write.instance.runtime_status in TERMINAL_STATUSES:
            self.log.info(
                "devhost: %s '%s' (%s) %s",
                "orchestration",
                write.instance.name,
                instance_id,
                write.instance.runtime_status,
            )
        elif write.drop_history:
            self.log.info(
                "devhost: orchestration '%s' (%s) continued as new", write.instance.name, instance_id
            )
        for item in work:
            self._dispatch_activity(item)
        now_us = to_micros(self.clock.now())
        for message in write.new_messages:
            if message.deliver_at <= now_us:
                self._wake(message.instance_id)
            else:
                self._timers_changed.set()
        self._notify_changed()
