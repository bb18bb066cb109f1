"""Replay a recorded orchestration history against the current orchestrator code.

A history is read from the devhost's own store or from a JSON file (a devhost history, or rows of an
Azure Storage task hub's History table). It is walked episode by episode, as DTFx would replay it:
each episode's request (all earlier events + its OrchestratorStarted + its incoming events) goes to
a fresh in-process SDK invocation, and the scheduling decisions the code makes now are compared with
the scheduling events that episode recorded (kind, name, EventId), then completion and output.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from devhost import protocol
from devhost.protocol import EVENT_TYPE_NAMES, ORCHESTRATION_STATUS_NAMES
from devhost.workers import run_orchestrator

EVENT_TYPES: dict[str, int] = {name: number for number, name in enumerate(EVENT_TYPE_NAMES)}

EXECUTION_STARTED = EVENT_TYPES["ExecutionStarted"]
EXECUTION_COMPLETED = EVENT_TYPES["ExecutionCompleted"]
EXECUTION_TERMINATED = EVENT_TYPES["ExecutionTerminated"]
TASK_SCHEDULED = EVENT_TYPES["TaskScheduled"]
SUB_ORCHESTRATION_CREATED = EVENT_TYPES["SubOrchestrationInstanceCreated"]
TIMER_CREATED = EVENT_TYPES["TimerCreated"]
ORCHESTRATOR_STARTED = EVENT_TYPES["OrchestratorStarted"]
ORCHESTRATOR_COMPLETED = EVENT_TYPES["OrchestratorCompleted"]
EVENT_SENT = EVENT_TYPES["EventSent"]
CONTINUE_AS_NEW = EVENT_TYPES["ContinueAsNew"]
EXECUTION_SUSPENDED = EVENT_TYPES["ExecutionSuspended"]
EXECUTION_RESUMED = EVENT_TYPES["ExecutionResumed"]

# Events an episode writes as the result of the orchestrator's decisions (DTFx dispatcher, step 4).
SCHEDULING_TYPES = frozenset({TASK_SCHEDULED, SUB_ORCHESTRATION_CREATED, TIMER_CREATED, EVENT_SENT})
OUTCOME_TYPES = frozenset({EXECUTION_COMPLETED, CONTINUE_AS_NEW})

STATUS_COMPLETED = 1
STATUS_FAILED = 3
STATUS_TERMINATED = 5

# History-table columns holding objects serialised as JSON text (TableEntityConverter's fallback).
_JSON_TEXT_COLUMNS = frozenset(
    {"OrchestrationInstance", "ParentInstance", "Tags", "FailureDetails", "ParentTraceContext"}
)
_INT_COLUMNS = frozenset({"EventId", "TaskScheduledId", "TimerId", "Generation"})
_TABLE_SYSTEM_COLUMNS = frozenset({"PartitionKey", "RowKey", "Timestamp", "ETag", "etag", "ExecutionId"})
_SENTINEL_ROW_KEY = "sentinel"


class HistoryFormatError(ValueError):
    """A history file or stored history that cannot be replayed; the message says why."""


@dataclass(frozen=True)
class RecordedHistory:
    """The events of ONE execution of an instance, oldest first, in the host's JSON shape."""

    instance_id: str
    events: tuple[dict[str, Any], ...]
    source: str
    executions_found: int = 1


# ---------------------------------------------------------------------------------------------- reading


def read_history_file(path: Path, instance_id: str | None = None) -> RecordedHistory:
    """Read a devhost history (list of events) or exported Azure Storage History-table rows."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryFormatError(f"{path}: cannot read: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HistoryFormatError(
            f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
        ) from exc
    return parse_history_document(document, source=str(path), instance_id=instance_id)


def parse_history_document(
    document: object, *, source: str, instance_id: str | None = None
) -> RecordedHistory:
    items = _items_of(document, source)
    if not items:
        raise HistoryFormatError(f"{source}: the history is empty")
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise HistoryFormatError(f"{source}: item {position} is {type(item).__name__}, not a JSON object")
    if any("PartitionKey" in item or "RowKey" in item for item in items):
        return history_from_table_rows(items, source=source, instance_id=instance_id)
    return history_from_events(items, source=source, instance_id=instance_id)


def _items_of(document: object, source: str) -> list[Any]:
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        # OData query responses use "value", `az storage entity query` uses "items".
        for key in ("history", "value", "items"):
            if isinstance(document.get(key), list):
                return document[key]
    raise HistoryFormatError(
        f"{source}: expected a JSON array of history events or History-table rows "
        f'(or an object with a "value"/"items" array)'
    )


def history_from_events(
    events: Sequence[Mapping[str, Any]], *, source: str, instance_id: str | None = None
) -> RecordedHistory:
    """A devhost-shaped history: DTFx event objects with EventType as an integer (names accepted)."""
    normalized = [
        _normalize_event(event, source, f"event {position}") for position, event in enumerate(events)
    ]
    starts = [i for i, event in enumerate(normalized) if event["EventType"] == EXECUTION_STARTED]
    if not starts:
        raise HistoryFormatError(f"{source}: no ExecutionStarted event; is this a full history?")
    latest = _execution_start(normalized, starts[-1])
    selected = normalized[latest:]
    recorded_id = _instance_id_of(selected)
    if instance_id is not None and recorded_id is not None and recorded_id != instance_id:
        raise HistoryFormatError(f"{source}: the history is of instance {recorded_id!r}, not {instance_id!r}")
    found_id = recorded_id or instance_id
    if found_id is None:
        raise HistoryFormatError(
            f"{source}: ExecutionStarted has no OrchestrationInstance.InstanceId; pass the INSTANCE_ID"
        )
    return RecordedHistory(
        instance_id=found_id, events=tuple(selected), source=source, executions_found=len(starts)
    )


def _execution_start(events: list[dict[str, Any]], execution_started: int) -> int:
    # An execution begins at the OrchestratorStarted of the episode that received its ExecutionStarted.
    for index in range(execution_started, -1, -1):
        if events[index]["EventType"] == ORCHESTRATOR_STARTED:
            return index
    return execution_started


def _instance_id_of(events: Sequence[Mapping[str, Any]]) -> str | None:
    for event in events:
        if event["EventType"] == EXECUTION_STARTED:
            instance = event.get("OrchestrationInstance")
            if isinstance(instance, dict) and isinstance(instance.get("InstanceId"), str):
                return instance["InstanceId"]
    return None


def history_from_table_rows(
    rows: Sequence[Mapping[str, Any]], *, source: str, instance_id: str | None = None
) -> RecordedHistory:
    """Rows of `<hub>History`: PartitionKey = instance id, RowKey = sequence as 16 hex digits."""
    event_rows = [row for row in rows if row.get("RowKey") != _SENTINEL_ROW_KEY]
    partitions = sorted({str(row.get("PartitionKey")) for row in event_rows})
    if instance_id is None:
        if len(partitions) != 1:
            raise HistoryFormatError(
                f"{source}: rows of {len(partitions)} instances ({', '.join(partitions[:5])}"
                f"{', ...' if len(partitions) > 5 else ''}); pass the INSTANCE_ID to replay"
            )
        instance_id = partitions[0]
    elif instance_id not in partitions:
        raise HistoryFormatError(f"{source}: no rows with PartitionKey {instance_id!r}")
    mine = [row for row in event_rows if str(row.get("PartitionKey")) == instance_id]
    executions = {str(row.get("ExecutionId")) for row in mine}
    latest = _latest_execution_id(mine)
    selected = sorted((row for row in mine if str(row.get("ExecutionId")) == latest), key=_row_order)
    _refuse_blob_references(selected, source)
    events = [_event_from_row(row, source) for row in selected]
    history = history_from_events(events, source=source, instance_id=instance_id)
    return replace(history, executions_found=len(executions))


def _latest_execution_id(rows: Sequence[Mapping[str, Any]]) -> str:
    started = [row for row in rows if _event_type_of(row.get("EventType"), "", "") == EXECUTION_STARTED]
    if started:
        newest = max(started, key=lambda row: str(row.get("_Timestamp") or row.get("Timestamp") or ""))
        return str(newest.get("ExecutionId"))
    # Without ExecutionStarted the newest generation is the one at the lowest RowKey (it overwrites from 0).
    return str(min(rows, key=_row_order).get("ExecutionId"))


def _row_order(row: Mapping[str, Any]) -> tuple[int, str]:
    key = str(row.get("RowKey", ""))
    try:
        return (int(key, 16), key)
    except ValueError:
        return (1 << 62, key)


def _refuse_blob_references(rows: Sequence[Mapping[str, Any]], source: str) -> None:
    missing: list[str] = []
    for row in rows:
        for column, blob in row.items():
            if not column.endswith("BlobName") or not blob:
                continue
            payload_column = column[: -len("BlobName")]
            if row.get(payload_column):
                continue  # Someone already inlined the payload.
            missing.append(
                f"row {row.get('RowKey')} ({row.get('EventType')}) {payload_column} is in blob {blob!r}"
            )
    if missing:
        raise HistoryFormatError(
            f"{source}: {len(missing)} large payload(s) are stored in blobs and not inlined in the export: "
            + "; ".join(missing[:5])
            + ("; ..." if len(missing) > 5 else "")
            + ". Download each blob from the task hub's '<hub>-largemessages' container, gunzip it, "
            "put its text in the named column and drop the *BlobName column"
        )


def _event_from_row(row: Mapping[str, Any], source: str) -> dict[str, Any]:
    where = f"row {row.get('RowKey')}"
    event: dict[str, Any] = {}
    for column, value in row.items():
        if column in _TABLE_SYSTEM_COLUMNS or "@odata" in column or column.startswith("odata."):
            continue
        if column.endswith("BlobName"):
            continue
        if column == "_Timestamp":
            event["Timestamp"] = value
        elif column in _JSON_TEXT_COLUMNS and isinstance(value, str) and value[:1] in "{[":
            try:
                event[column] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise HistoryFormatError(f"{source}: {where}: {column} is not valid JSON: {exc.msg}") from exc
        else:
            event[column] = value
    if "Timestamp" not in event and "Timestamp" in row:
        event["Timestamp"] = row["Timestamp"]  # Older exports only carry the table's own timestamp.
    return event


def _normalize_event(event: Mapping[str, Any], source: str, where: str) -> dict[str, Any]:
    normalized = dict(event)
    normalized["EventType"] = _event_type_of(event.get("EventType"), source, where)
    if normalized["EventType"] is None:
        raise HistoryFormatError(f"{source}: {where} has no EventType")
    for column in _INT_COLUMNS:
        value = normalized.get(column)
        if isinstance(value, str) and value.lstrip("-").isdigit():
            normalized[column] = int(value)
    normalized.setdefault("EventId", -1)
    played = normalized.get("IsPlayed", False)
    normalized["IsPlayed"] = played is True or (isinstance(played, str) and played.lower() == "true")
    status = normalized.get("OrchestrationStatus")
    if isinstance(status, str):
        if status not in ORCHESTRATION_STATUS_NAMES:
            raise HistoryFormatError(f"{source}: {where}: unknown OrchestrationStatus {status!r}")
        normalized["OrchestrationStatus"] = ORCHESTRATION_STATUS_NAMES.index(status)
    if "Timestamp" not in normalized:
        raise HistoryFormatError(f"{source}: {where} has no Timestamp")
    return normalized


def _event_type_of(value: object, source: str, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise HistoryFormatError(f"{source}: {where}: EventType {value!r} is not an event type")
    if isinstance(value, int):
        if 0 <= value < len(EVENT_TYPE_NAMES):
            return value
    elif isinstance(value, str):
        if value in EVENT_TYPES:
            return EVENT_TYPES[value]
        if value.isdigit() and int(value) < len(EVENT_TYPE_NAMES):
            return int(value)
    if not source:
        return None
    raise HistoryFormatError(f"{source}: {where}: unknown EventType {value!r}")


def event_type_name(event: Mapping[str, Any]) -> str:
    number = event.get("EventType")
    if isinstance(number, int) and 0 <= number < len(EVENT_TYPE_NAMES):
        return EVENT_TYPE_NAMES[number]
    return str(number)


# ---------------------------------------------------------------------------------------------- episodes


@dataclass(frozen=True)
class Episode:
    """One OrchestratorStarted ... OrchestratorCompleted block of a history (positions into it)."""

    number: int
    start: int
    end: int
    incoming: tuple[int, ...]
    scheduled: tuple[int, ...]
    outcome: int | None
    closed: bool


def split_episodes(events: Sequence[Mapping[str, Any]], source: str = "history") -> list[Episode]:
    if not events or events[0]["EventType"] != ORCHESTRATOR_STARTED:
        raise HistoryFormatError(f"{source}: the history must start with an OrchestratorStarted event")
    starts = [i for i, event in enumerate(events) if event["EventType"] == ORCHESTRATOR_STARTED]
    episodes: list[Episode] = []
    for number, start in enumerate(starts, 1):
        end = starts[number] if number < len(starts) else len(events)
        incoming: list[int] = []
        scheduled: list[int] = []
        outcome: int | None = None
        closed = False
        for position in range(start + 1, end):
            kind = events[position]["EventType"]
            if kind in SCHEDULING_TYPES:
                scheduled.append(position)
            elif kind in OUTCOME_TYPES:
                outcome = position
            elif kind == ORCHESTRATOR_COMPLETED:
                closed = True
            else:
                incoming.append(position)
        episodes.append(
            Episode(
                number, start, end, tuple(incoming), tuple(scheduled), outcome, closed or outcome is not None
            )
        )
    first = episodes[0]
    if not first.incoming or events[first.incoming[0]]["EventType"] != EXECUTION_STARTED:
        raise HistoryFormatError(f"{source}: the first episode must receive the ExecutionStarted event")
    return episodes


# ---------------------------------------------------------------------------------------------- replay

OrchestratorHandle = Callable[[str], Any]


class ReplayError(Exception):
    """The history cannot be replayed by this code (not a non-determinism finding)."""


@dataclass(frozen=True)
class Divergence:
    """The first step where the current code departs from the recorded history."""

    episode: int
    position: int
    event_id: int | None
    expected: str
    actual: str

    def describe(self) -> str:
        event = f", EventId {self.event_id}" if self.event_id is not None else ""
        where = f"episode {self.episode}, history position {self.position}{event}"
        return f"{where}: expected {self.expected}, code now {self.actual}"


@dataclass(frozen=True)
class ReplayReport:
    instance_id: str
    orchestrator: str
    episodes: int
    events: int
    divergence: Divergence | None
    executions_found: int = 1
    # The recording stopped inside an episode (no OrchestratorCompleted yet): its decisions were not compared.
    last_episode_open: bool = False

    @property
    def deterministic(self) -> bool:
        return self.divergence is None

    def summary(self) -> str:
        head = f"replayed {self.episodes} episodes, {self.events} events of instance {self.instance_id}"
        notes: list[str] = []
        if self.executions_found > 1:
            notes.append(f"latest of {self.executions_found} executions")
        if self.last_episode_open:
            notes.append("last episode still in progress, its decisions not compared")
        suffix = f" ({'; '.join(notes)})" if notes else ""
        if self.divergence is None:
            return f"{head}: deterministic{suffix}"
        return (
            f"non-deterministic: instance {self.instance_id} (orchestrator '{self.orchestrator}') "
            f"departs from its history in episode {self.divergence.episode} of {self.episodes}{suffix}\n"
            f"  {self.divergence.describe()}"
        )


def execution_started_event(history: RecordedHistory) -> Mapping[str, Any]:
    for event in history.events:
        if event["EventType"] == EXECUTION_STARTED:
            return event
    raise HistoryFormatError(f"{history.source}: no ExecutionStarted event")


def orchestrator_name(history: RecordedHistory) -> str:
    name = execution_started_event(history).get("Name")
    if not isinstance(name, str) or not name:
        raise HistoryFormatError(f"{history.source}: ExecutionStarted has no orchestrator Name")
    return name


def replay_history(history: RecordedHistory, orchestrator: OrchestratorHandle) -> ReplayReport:
    """Re-run `orchestrator` over every episode of `history` and report the first divergence."""
    events = list(history.events)
    episodes = split_episodes(events, history.source)
    started = execution_started_event(history)
    parent = started.get("ParentInstance") or {}
    parent_id = (
        (parent.get("OrchestrationInstance") or {}).get("InstanceId") if isinstance(parent, dict) else None
    )
    divergence: Divergence | None = None
    for episode in episodes:
        divergence = _replay_episode(events, episode, orchestrator, history, parent_id, started.get("Input"))
        if divergence is not None:
            break
    last = episodes[-1]
    return ReplayReport(
        instance_id=history.instance_id,
        orchestrator=orchestrator_name(history),
        episodes=len(episodes),
        events=len(events),
        divergence=divergence,
        executions_found=history.executions_found,
        last_episode_open=not last.closed and divergence is None,
    )


def _replay_episode(
    events: list[dict[str, Any]],
    episode: Episode,
    orchestrator: OrchestratorHandle,
    history: RecordedHistory,
    parent_id: str | None,
    input_text: str | None,
) -> Divergence | None:
    incoming_types = [events[i]["EventType"] for i in episode.incoming]
    if EXECUTION_TERMINATED in incoming_types:
        return None  # DTFx ends a terminated instance without running the orchestrator.
    if _suspended_after(incoming_types):
        return None  # Events wait in a buffer while suspended; nothing runs.
    request_events = [_as_played(event) for event in events[: episode.start]]
    request_events.append(_as_new(events[episode.start]))
    request_events.extend(_as_new(events[i]) for i in episode.incoming)
    request = protocol.build_orchestrator_request(
        request_events,
        instance_id=history.instance_id,
        input_text=input_text,
        parent_instance_id=parent_id,
        is_replaying=episode.start > 0,
    )
    # A fresh SDK invocation per episode, in this process, so breakpoints in the orchestrator hit;
    # the same call and action replay the engine uses.
    run = run_orchestrator(orchestrator, request, request_events)
    reply, result = run.reply, run.replay
    if result.unsupported:
        raise ReplayError(f"episode {episode.number}: {result.unsupported}")
    if result.nondeterminism is not None:
        found = result.nondeterminism
        return Divergence(
            episode=episode.number,
            position=found.position,
            event_id=found.event_id,
            expected=describe_event(events[found.position]),
            actual=f"produces {found.actual} with that EventId",
        )
    if not episode.closed:
        return None
    failure = reply.error or result.host_error
    return _compare_episode(events, episode, reply, result, failure)


def _compare_episode(
    events: list[dict[str, Any]],
    episode: Episode,
    reply: protocol.OrchestratorReply,
    result: protocol.ReplayResult,
    failure: str | None,
) -> Divergence | None:
    if failure is not None:
        return _compare_failure(events, episode, result, failure)
    return _compare_decisions(events, episode, result) or _compare_outcome(events, episode, reply, result)


def _compare_failure(
    events: list[dict[str, Any]], episode: Episode, result: protocol.ReplayResult, failure: str
) -> Divergence | None:
    outcome = events[episode.outcome] if episode.outcome is not None else None
    if outcome is not None and outcome.get("OrchestrationStatus") == STATUS_FAILED:
        return None  # Failed then, fails now; what it scheduled on its way out is not compared.
    actual = f"fails: {_error_summary(failure)}"
    if episode.scheduled:
        position = episode.scheduled[0]
        event = events[position]
        return Divergence(episode.number, position, event.get("EventId"), describe_event(event), actual)
    if outcome is not None and episode.outcome is not None:
        return Divergence(episode.number, episode.outcome, None, describe_event(outcome), actual)
    if result.open_tasks:
        return None  # DTFx holds a failure back until the open tasks finish (§4.6); a later episode shows it.
    return Divergence(episode.number, episode.end - 1, None, "the orchestration to keep running", actual)


def _compare_decisions(
    events: list[dict[str, Any]], episode: Episode, result: protocol.ReplayResult
) -> Divergence | None:
    decisions = [d for d in result.decisions if not isinstance(d, protocol.ContinueAsNew)]
    recorded = list(episode.scheduled)
    after_scheduling = episode.outcome if episode.outcome is not None else episode.end - 1
    for step in range(max(len(recorded), len(decisions))):
        event = events[recorded[step]] if step < len(recorded) else None
        decision = decisions[step] if step < len(decisions) else None
        if event is not None and decision is not None and _same_step(event, decision):
            continue
        expected_id = event.get("EventId") if event is not None else None
        if decision is None:
            actual = "schedules nothing more"
        else:
            actual = (
                f"schedules {describe_decision(decision, show_event_id=decision.event_id != expected_id)}"
            )
        return Divergence(
            episode=episode.number,
            position=recorded[step] if event is not None else after_scheduling,
            event_id=expected_id if event is not None else getattr(decision, "event_id", None),
            expected=describe_event(event) if event is not None else _after_scheduling(events, episode),
            actual=actual,
        )
    return None


def _after_scheduling(events: list[dict[str, Any]], episode: Episode) -> str:
    if episode.outcome is not None:
        return describe_event(events[episode.outcome])
    return "nothing more scheduled in this episode"


def _compare_outcome(
    events: list[dict[str, Any]],
    episode: Episode,
    reply: protocol.OrchestratorReply,
    result: protocol.ReplayResult,
) -> Divergence | None:
    continued = next((d for d in result.decisions if isinstance(d, protocol.ContinueAsNew)), None)
    done_now = (
        "is still waiting" if not reply.is_done else f"completes with output {_short(reply.output_text)}"
    )
    if continued is not None:
        done_now = f"continues as new with input {_short(continued.input_text)}"
    if episode.outcome is None:
        if continued is not None or (reply.is_done and not result.open_tasks):
            return Divergence(
                episode.number, episode.end - 1, None, "the orchestration to keep running", done_now
            )
        return None
    outcome = events[episode.outcome]
    position = episode.outcome

    def differs(actual: str) -> Divergence:
        return Divergence(episode.number, position, outcome.get("EventId"), describe_event(outcome), actual)

    if outcome["EventType"] == CONTINUE_AS_NEW:
        if continued is None:
            return differs(done_now)
        if not _same_json(outcome.get("Result"), continued.input_text):
            return differs(done_now)
        return None
    status = outcome.get("OrchestrationStatus")
    if status == STATUS_COMPLETED:
        if continued is not None or not reply.is_done:
            return differs(done_now)
        if not _same_json(outcome.get("Result"), reply.output_text):
            return differs(done_now)
        return None
    if status == STATUS_FAILED:
        return differs(f"does not fail: it {done_now}")
    return None


def _same_step(event: Mapping[str, Any], decision: protocol.Decision) -> bool:
    if event.get("EventId") != getattr(decision, "event_id", None):
        return False
    kind = event["EventType"]
    if kind == TIMER_CREATED:
        return isinstance(decision, protocol.CreateTimer)
    expected_type = {
        TASK_SCHEDULED: protocol.ScheduleActivity,
        SUB_ORCHESTRATION_CREATED: protocol.CreateSubOrchestration,
        EVENT_SENT: protocol.SendEvent,
    }.get(kind)
    if expected_type is None or not isinstance(decision, expected_type):
        return False
    # DTFx compares names case-insensitively (TaskOrchestrationContext.cs).
    return str(event.get("Name", "")).lower() == str(getattr(decision, "name", "")).lower()


def describe_event(event: Mapping[str, Any]) -> str:
    kind = event["EventType"]
    name = event_type_name(event)
    event_id = event.get("EventId")
    if kind in (TASK_SCHEDULED, SUB_ORCHESTRATION_CREATED):
        return f"{name} '{event.get('Name')}' (EventId {event_id})"
    if kind == EVENT_SENT:
        return f"{name} '{event.get('Name')}' to '{event.get('InstanceId')}' (EventId {event_id})"
    if kind == TIMER_CREATED:
        return f"{name} firing at {event.get('FireAt')} (EventId {event_id})"
    if kind == EXECUTION_COMPLETED:
        status = event.get("OrchestrationStatus")
        status_name = (
            ORCHESTRATION_STATUS_NAMES[status]
            if isinstance(status, int) and 0 <= status < len(ORCHESTRATION_STATUS_NAMES)
            else str(status)
        )
        if status == STATUS_COMPLETED:
            return f"{name} (Completed) with output {_short(event.get('Result'))}"
        if status == STATUS_FAILED:
            return f"{name} (Failed: {_first_line(str(event.get('Result')))})"
        return f"{name} ({status_name})"
    if kind == CONTINUE_AS_NEW:
        return f"{name} with input {_short(event.get('Result'))}"
    return name


def describe_decision(decision: protocol.Decision, *, show_event_id: bool = True) -> str:
    event_id = f" (EventId {decision.event_id})" if show_event_id and hasattr(decision, "event_id") else ""
    if isinstance(decision, protocol.ScheduleActivity):
        return f"CallActivity '{decision.name}'{event_id}"
    if isinstance(decision, protocol.CreateSubOrchestration):
        return f"CallSubOrchestrator '{decision.name}'{event_id}"
    if isinstance(decision, protocol.CreateTimer):
        return f"CreateTimer firing at {decision.fire_at}{event_id}"
    if isinstance(decision, protocol.SendEvent):
        return f"SendEvent '{decision.name}' to '{decision.instance_id}'{event_id}"
    return f"ContinueAsNew with input {_short(decision.input_text)}"


def _as_played(event: Mapping[str, Any]) -> dict[str, Any]:
    # §2.2: a message event from an earlier episode reaches the worker with IsPlayed=true.
    played = dict(event)
    played["IsPlayed"] = event["EventType"] in protocol.MESSAGE_EVENT_TYPES
    return played


def _as_new(event: Mapping[str, Any]) -> dict[str, Any]:
    fresh = dict(event)
    fresh["IsPlayed"] = False
    return fresh


def _suspended_after(incoming_types: Sequence[int]) -> bool:
    state = False
    for kind in incoming_types:
        if kind == EXECUTION_SUSPENDED:
            state = True
        elif kind == EXECUTION_RESUMED:
            state = False
    return state


def _same_json(recorded: object, current: object) -> bool:
    if recorded is None or current is None:
        return recorded is None and current is None
    try:
        return json.loads(str(recorded)) == json.loads(str(current))
    except json.JSONDecodeError:
        return str(recorded) == str(current)


def _short(text: object, limit: int = 80) -> str:
    shown = "null" if text is None else str(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _error_summary(error: str) -> str:
    # A failure without the SDK's state marker arrives in the host's RPC shape; show its exception line.
    _, marker, rest = error.partition("\nException: ")
    return _first_line(rest.split("\nStack:", 1)[0] if marker else error)


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= limit else line[: limit - 3] + "..."
