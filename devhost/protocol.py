"""Host side of the Durable Functions out-of-proc protocol (SDK 1.7.0, replay schema V3).

Pure functions only: no I/O, no clocks. Section numbers refer to docs/durable-protocol.md.
"""

from __future__ import annotations

import json
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"
LONG_TIMER_INTERVAL = "3.00:00:00"
MAX_SHORT_TIMER = "6.00:00:00"
DEFAULT_HTTP_SLEEP_MS = 30000
MAX_ORCHESTRATION_ACTIONS = 100_000
CUSTOM_STATUS_LIMIT_KB = 16
# EXT RetryOptions: MaxRetryInterval defaults to 6 days.
DEFAULT_MAX_RETRY_INTERVAL = timedelta(days=6)
UNSUPPORTED_SUFFIX = "not supported by devhost"


class EventType(IntEnum):
    """DTFx history event types (§2.1)."""

    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_FAILED = 2
    EXECUTION_TERMINATED = 3
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_CREATED = 7
    SUB_ORCHESTRATION_COMPLETED = 8
    SUB_ORCHESTRATION_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_SENT = 14
    EVENT_RAISED = 15
    CONTINUE_AS_NEW = 16
    GENERIC = 17
    HISTORY_STATE = 18
    EXECUTION_SUSPENDED = 19
    EXECUTION_RESUMED = 20


class OrchestrationStatus(IntEnum):
    """DTFx OrchestrationStatus as written into ExecutionCompleted.OrchestrationStatus."""

    RUNNING = 0
    COMPLETED = 1
    CONTINUED_AS_NEW = 2
    FAILED = 3
    CANCELED = 4
    TERMINATED = 5
    PENDING = 6
    SUSPENDED = 7


# DTFx names in enum order: the status API and Azure Storage's History table write names, not numbers.
EVENT_TYPE_NAMES: tuple[str, ...] = (
    "ExecutionStarted",
    "ExecutionCompleted",
    "ExecutionFailed",
    "ExecutionTerminated",
    "TaskScheduled",
    "TaskCompleted",
    "TaskFailed",
    "SubOrchestrationInstanceCreated",
    "SubOrchestrationInstanceCompleted",
    "SubOrchestrationInstanceFailed",
    "TimerCreated",
    "TimerFired",
    "OrchestratorStarted",
    "OrchestratorCompleted",
    "EventSent",
    "EventRaised",
    "ContinueAsNew",
    "GenericEvent",
    "HistoryState",
    "ExecutionSuspended",
    "ExecutionResumed",
    "ExecutionRewound",
)
ORCHESTRATION_STATUS_NAMES: tuple[str, ...] = (
    "Running",
    "Completed",
    "ContinuedAsNew",
    "Failed",
    "Canceled",
    "Terminated",
    "Pending",
    "Suspended",
)


class ActionType(IntEnum):
    """SDK action types (§3.1)."""

    CALL_ACTIVITY = 0
    CALL_ACTIVITY_WITH_RETRY = 1
    CALL_SUB_ORCHESTRATOR = 2
    CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
    CONTINUE_AS_NEW = 4
    CREATE_TIMER = 5
    WAIT_FOR_EXTERNAL_EVENT = 6
    CALL_ENTITY = 7
    CALL_HTTP = 8
    SIGNAL_ENTITY = 9
    SCHEDULED_SIGNAL_ENTITY = 10
    WHEN_ANY = 11
    WHEN_ALL = 12


# Events that arrive as messages; the host persists them with IsPlayed=true (§2.2).
MESSAGE_EVENT_TYPES = frozenset(
    {
        EventType.EXECUTION_STARTED,
        EventType.EXECUTION_TERMINATED,
        EventType.TASK_COMPLETED,
        EventType.TASK_FAILED,
        EventType.SUB_ORCHESTRATION_COMPLETED,
        EventType.SUB_ORCHESTRATION_FAILED,
        EventType.TIMER_FIRED,
        EventType.EVENT_RAISED,
        EventType.EXECUTION_SUSPENDED,
        EventType.EXECUTION_RESUMED,
    }
)


# ---------------------------------------------------------------------------------------------
# Timestamps
# ---------------------------------------------------------------------------------------------


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with 7 fractional digits and ``Z`` (the host's DateTime form)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_timestamp(text: str) -> datetime:
    """Parse a host or SDK timestamp (``Z`` or offset, up to 7 fractional digits) as aware UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    head, sep, tail = value.partition(".")
    if sep:
        digits = ""
        rest = tail
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        value = f"{head}.{(digits + '000000')[:6]}{rest}"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# History events (§2.1 shapes, PascalCase; EventId/IsPlayed per §2.2)
# ---------------------------------------------------------------------------------------------


def _event(kind: EventType, timestamp: str, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "EventType": int(kind),
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": timestamp,
    }
    event.update(fields)
    return event


def orchestrator_started(timestamp: str) -> dict[str, Any]:
    return _event(EventType.ORCHESTRATOR_STARTED, timestamp)


def orchestrator_completed(timestamp: str) -> dict[str, Any]:
    return _event(EventType.ORCHESTRATOR_COMPLETED, timestamp)


@dataclass(frozen=True)
class ParentInstance:
    """The parent of a sub-orchestration, as carried by its ExecutionStarted event."""

    name: str
    instance_id: str
    execution_id: str
    task_schedule_id: int


def execution_started(
    timestamp: str,
    *,
    instance_id: str,
    execution_id: str,
    name: str,
    input_text: str | None,
    parent: ParentInstance | None = None,
    generation: int = 0,
) -> dict[str, Any]:
    parent_json = None
    if parent is not None:
        parent_json = {
            "Name": parent.name,
            "Version": "",
            "OrchestrationInstance": {"InstanceId": parent.instance_id, "ExecutionId": parent.execution_id},
            "TaskScheduleId": parent.task_schedule_id,
        }
    return _event(
        EventType.EXECUTION_STARTED,
        timestamp,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=parent_json,
        Name=name,
        Version="",
        Input=input_text,
        Tags=None,
        Correlation=None,
        ScheduledStartTime=None,
        Generation=generation,
    )


def execution_completed(
    timestamp: str, event_id: int, status: OrchestrationStatus, result: str | None
) -> dict[str, Any]:
    return _event(
        EventType.EXECUTION_COMPLETED,
        timestamp,
        event_id,
        OrchestrationStatus=int(status),
        Result=result,
        FailureDetails=None,
    )


def continued_as_new(timestamp: str, event_id: int, input_text: str | None) -> dict[str, Any]:
    return _event(
        EventType.CONTINUE_AS_NEW,
        timestamp,
        event_id,
        OrchestrationStatus=int(OrchestrationStatus.CONTINUED_AS_NEW),
        Result=input_text,
        FailureDetails=None,
    )


def execution_terminated(timestamp: str, reason: str | None) -> dict[str, Any]:
    return _event(EventType.EXECUTION_TERMINATED, timestamp, Input=reason)


def execution_suspended(timestamp: str, reason: str | None) -> dict[str, Any]:
    return _event(EventType.EXECUTION_SUSPENDED, timestamp, Reason=reason)


def execution_resumed(timestamp: str, reason: str | None) -> dict[str, Any]:
    return _event(EventType.EXECUTION_RESUMED, timestamp, Reason=reason)


def task_scheduled(timestamp: str, event_id: int, name: str) -> dict[str, Any]:
    # Input stays null: the host only stores it with storeInputsInOrchestrationHistory (§2.1).
    return _event(EventType.TASK_SCHEDULED, timestamp, event_id, Name=name, Version="", Input=None, Tags=None)


def task_completed(timestamp: str, task_id: int, result: str | None) -> dict[str, Any]:
    return _event(EventType.TASK_COMPLETED, timestamp, TaskScheduledId=task_id, Result=result)


def task_failed(timestamp: str, task_id: int, reason: str, details: str | None) -> dict[str, Any]:
    return _event(
        EventType.TASK_FAILED,
        timestamp,
        TaskScheduledId=task_id,
        Reason=reason,
        Details=details,
        FailureDetails=None,
    )


def sub_orchestration_created(timestamp: str, event_id: int, name: str, instance_id: str) -> dict[str, Any]:
    return _event(
        EventType.SUB_ORCHESTRATION_CREATED,
        timestamp,
        event_id,
        Name=name,
        Version="",
        InstanceId=instance_id,
        Input=None,
        ClientSpanId=None,
        Tags=None,
    )


def sub_orchestration_completed(timestamp: str, task_id: int, result: str | None) -> dict[str, Any]:
    return _event(EventType.SUB_ORCHESTRATION_COMPLETED, timestamp, TaskScheduledId=task_id, Result=result)


def sub_orchestration_failed(
    timestamp: str, task_id: int, reason: str | None, details: str | None
) -> dict[str, Any]:
    return _event(
        EventType.SUB_ORCHESTRATION_FAILED,
        timestamp,
        TaskScheduledId=task_id,
        Reason=reason,
        Details=details,
        FailureDetails=None,
    )


def timer_created(timestamp: str, event_id: int, fire_at: str) -> dict[str, Any]:
    return _event(EventType.TIMER_CREATED, timestamp, event_id, FireAt=fire_at)


def timer_fired(timestamp: str, timer_id: int, fire_at: str) -> dict[str, Any]:
    return _event(EventType.TIMER_FIRED, timestamp, TimerId=timer_id, FireAt=fire_at)


def event_raised(timestamp: str, name: str, input_text: str | None) -> dict[str, Any]:
    return _event(EventType.EVENT_RAISED, timestamp, Name=name, Input=input_text)


def event_sent(
    timestamp: str, event_id: int, instance_id: str, name: str, input_text: str | None
) -> dict[str, Any]:
    return _event(
        EventType.EVENT_SENT, timestamp, event_id, InstanceId=instance_id, Name=name, Input=input_text
    )


# ---------------------------------------------------------------------------------------------
# Request (§1.1) and reply (§1.2, §1.3)
# ---------------------------------------------------------------------------------------------


def request_input_value(input_text: str | None) -> Any:
    """The request's ``input``: the stored ExecutionStarted.Input parsed as JSON (GetInputAsJson).

    For the Python client this is a JSON string literal, so the SDK receives JSON *text* (§6.5).
    """
    if input_text is None:
        return None
    try:
        return json.loads(input_text)
    except ValueError:
        return input_text


def _request_tail(
    *, instance_id: str, input_text: str | None, parent_instance_id: str | None, is_replaying: bool
) -> str:
    return json.dumps(
        {
            "input": request_input_value(input_text),
            "instanceId": instance_id,
            "isReplaying": is_replaying,
            "parentInstanceId": parent_instance_id,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
            "longRunningTimerIntervalDuration": LONG_TIMER_INTERVAL,
            "maximumShortTimerDuration": MAX_SHORT_TIMER,
            "defaultHttpAsyncRequestSleepTimeMillseconds": DEFAULT_HTTP_SLEEP_MS,
        }
    )[1:]


def build_orchestrator_request(
    history: list[dict[str, Any]],
    *,
    instance_id: str,
    input_text: str | None,
    parent_instance_id: str | None,
    is_replaying: bool,
) -> str:
    """The context JSON the host passes as the orchestrationTrigger value (§1.1)."""
    return build_orchestrator_request_from_texts(
        [json.dumps(e) for e in history],
        instance_id=instance_id,
        input_text=input_text,
        parent_instance_id=parent_instance_id,
        is_replaying=is_replaying,
    )


def build_orchestrator_request_from_texts(
    event_texts: Iterable[str],
    *,
    instance_id: str,
    input_text: str | None,
    parent_instance_id: str | None,
    is_replaying: bool,
) -> str:
    """Same as :func:`build_orchestrator_request` from already-serialised events (avoids re-encoding)."""
    tail = _request_tail(
        instance_id=instance_id,
        input_text=input_text,
        parent_instance_id=parent_instance_id,
        is_replaying=is_replaying,
    )
    return '{"history": [' + ", ".join(event_texts) + "], " + tail


@dataclass
class OrchestratorReply:
    """What one orchestrator invocation answered."""

    is_done: bool
    actions: list[dict[str, Any]]
    output_text: str | None
    error: str | None
    custom_status: Any = None
    has_custom_status: bool = False


def compact_json(value: Any) -> str:
    """JSON as Newtonsoft writes a JToken: no whitespace, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _rpc_failure_text(exc: BaseException) -> str:
    # What the host receives from the worker when the marker is missing (§1.3, HOSTRPC).
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    return f"Result: Failure\nException: {type(exc).__name__}: {exc}\nStack: {stack}"


def parse_orchestrator_reply(reply: str | None, exc: BaseException | None) -> OrchestratorReply:
    """Interpret the handler's return value, or the exception it raised (``$OutOfProcData$``)."""
    if exc is not None:
        message = str(exc)
        head, marker, state_text = message.partition(OUT_OF_PROC_MARKER)
        if not marker:
            return OrchestratorReply(False, [], None, _rpc_failure_text(exc))
        reply = state_text
        del head
    if reply is None:
        return OrchestratorReply(False, [], None, "The orchestrator function returned no state.")
    try:
        state = json.loads(reply)
    except ValueError as error:
        return OrchestratorReply(False, [], None, f"The orchestrator returned invalid JSON: {error}")
    if not isinstance(state, dict):
        return OrchestratorReply(False, [], None, "The orchestrator returned a non-object state.")
    outer = state.get("actions") or [[]]
    if len(outer) != 1 or not isinstance(outer[0], list):
        return OrchestratorReply(
            False,
            [],
            None,
            f"Expected one action list for replay schema V3, got {len(outer)} (the host rejects this).",
        )
    output_text = compact_json(state["output"]) if state.get("output") is not None else None
    error = state.get("error") or None
    has_custom = "customStatus" in state and state["customStatus"] is not None
    return OrchestratorReply(
        is_done=bool(state.get("isDone")),
        actions=outer[0],
        output_text=output_text,
        error=str(error) if error is not None else None,
        custom_status=state.get("customStatus") if has_custom else None,
        has_custom_status=has_custom,
    )


# ---------------------------------------------------------------------------------------------
# Failure texts (§3.4, §4.6, §5, §9.1)
# ---------------------------------------------------------------------------------------------


def orchestrator_failure_text(name: str, error: str) -> str:
    return f"Orchestrator function '{name}' failed: {error}"


def orchestrator_failure_details(error: str, stack: str = "") -> str:
    return f"Message: {error}, StackTrace: {stack}"


def custom_status_size_error(custom_status_json: str) -> str | None:
    """The host's 16 KB UTF-16 check on the serialised custom status, or None when it fits."""
    size_kb = int(len(custom_status_json.encode("utf-16-le")) / 1024.0)
    if size_kb > CUSTOM_STATUS_LIMIT_KB:
        return (
            "The UTF-16 size of the JSON-serialized payload must not exceed 16 KB. "
            f"The current payload size is {size_kb} KB."
        )
    return None


def activity_failure_reason(name: str, exc: BaseException) -> str:
    return f"Activity function '{name}' failed: {type(exc).__name__}: {exc}"


_RPC_EXCEPTION = "Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException"


def activity_failure_details(exc: BaseException) -> str:
    """Details of a TaskFailed: the host's serialised .NET exception, whose exact JSON is unverified.

    The shape follows §5 (a System.Exception wrapping the worker's RpcException text).
    """
    friendly = f"{type(exc).__name__}: {exc}"
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    rpc_message = f"Result: Failure\nException: {friendly}\nStack: {stack}"
    return compact_json(
        {
            "$type": "System.Exception, System.Private.CoreLib",
            "ClassName": "System.Exception",
            "Message": friendly,
            "Data": None,
            "InnerException": {
                "$type": f"{_RPC_EXCEPTION}, Microsoft.Azure.WebJobs.Script",
                "ClassName": _RPC_EXCEPTION,
                "Message": rpc_message,
                "Data": None,
                "InnerException": None,
                "HelpURL": None,
                "StackTraceString": None,
                "HResult": -2146233088,
                "Source": None,
            },
            "HelpURL": None,
            "StackTraceString": None,
            "HResult": -2146233088,
            "Source": None,
        }
    )


def unknown_function_text(name: str, kind: str, known: Iterable[str]) -> str:
    """``ThrowIfFunctionDoesNotExist`` (kind is ``activity`` or ``orchestrator``)."""
    names = ", ".join(f"'{n}'" for n in sorted(known))
    return (
        f"The function '{name}' doesn't exist, is disabled, or is not an {kind} function. "
        f"Additional info: The following are the known {kind} functions: {names}."
    )


def instance_id_error(instance_id: str) -> str | None:
    """The client's instance-id rules (§9.2), or None when the id is acceptable."""
    if not instance_id:
        return "Instance ID must not be empty."
    if len(instance_id) > 256:
        return "Instance ID lengths must not exceed 256 characters."
    if instance_id.startswith("@"):
        return "Orchestration instance ids must not start with @."
    if any(ch in "/\\?#" or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in instance_id):
        return "Instance ID must not contain /, \\, #, ?, or control characters."
    return None


# ---------------------------------------------------------------------------------------------
# Replay of actions against history (§3.3)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleActivity:
    event_id: int
    name: str
    input_text: str | None


@dataclass(frozen=True)
class CreateTimer:
    event_id: int
    fire_at: str
    # Cancelled while being replayed: DTFx still records it, but it is no longer an open task.
    canceled: bool = False


@dataclass(frozen=True)
class CreateSubOrchestration:
    event_id: int
    name: str
    instance_id: str
    input_text: str | None


@dataclass(frozen=True)
class SendEvent:
    event_id: int
    instance_id: str
    name: str
    input_text: str | None


@dataclass(frozen=True)
class ContinueAsNew:
    input_text: str | None


Decision = ScheduleActivity | CreateTimer | CreateSubOrchestration | SendEvent | ContinueAsNew


@dataclass(frozen=True)
class Nondeterminism:
    """A scheduling event in history that the replayed actions do not reproduce (§3.4)."""

    position: int
    event_id: int
    expected: str
    actual: str
    message: str


@dataclass
class ReplayResult:
    decisions: list[Decision] = field(default_factory=list)
    open_tasks: bool = False
    nondeterminism: Nondeterminism | None = None
    unsupported: str | None = None
    # A synchronous host error while invoking an action (sub-orchestration id rules, action limit).
    host_error: str | None = None
    # The next sequence number: the EventId DTFx gives ExecutionCompleted/ContinueAsNew.
    next_event_id: int = 0


class _StopReplay(Exception):
    """Raised inside the simulation when replay cannot go on (unsupported API, host error)."""


class _SimTask:
    """A .NET Task stand-in: completes once, then runs its continuations."""

    __slots__ = ("callbacks", "done", "failed")

    def __init__(self) -> None:
        self.done = False
        self.failed = False
        self.callbacks: list[Callable[[_SimTask], None]] = []

    def then(self, callback: Callable[[_SimTask], None]) -> None:
        if self.done:
            callback(self)
        else:
            self.callbacks.append(callback)

    def finish(self, failed: bool) -> None:
        if self.done:
            return
        self.done = True
        self.failed = failed
        callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback(self)


@dataclass
class _Scheduled:
    """An id allocated during replay: the scheduling action DTFx would record under it."""

    kind: str  # "activity" | "timer" | "suborchestration" | "eventsent"
    decision: Decision
    task: _SimTask
    is_open: bool = True


_KIND_FOR_EVENT = {
    EventType.TASK_SCHEDULED: "activity",
    EventType.TIMER_CREATED: "timer",
    EventType.SUB_ORCHESTRATION_CREATED: "suborchestration",
    EventType.EVENT_SENT: "eventsent",
}
_KIND_TEXT = {
    "activity": "an activity task",
    "timer": "a timer task",
    "suborchestration": "a sub-orchestration task",
    "eventsent": "a send event task",
}


def _describe(kind: str, name: str | None) -> str:
    """How the non-determinism messages name a scheduled task: kind, and name where it has one."""
    text = _KIND_TEXT.get(kind, kind)
    if kind == "timer":
        return text
    return f"{text} named '{name}'"


class _Replayer:
    """Cooperative re-execution of the SDK's cumulative actions with DTFx + shim semantics."""

    def __init__(self, history: list[dict[str, Any]], actions: list[dict[str, Any]]) -> None:
        self.history = history
        self.actions = actions
        self.seq = 0
        self.now: datetime | None = None
        self.scheduled: dict[int, _Scheduled] = {}
        self.matched: set[int] = set()
        self.waiters: dict[str, deque[_SimTask]] = {}
        self.buffered: dict[str, int] = {}
        self.continue_as_new: ContinueAsNew | None = None
        self.result = ReplayResult()
        self.instance_id = ""
        self.execution_id = ""
        self.parent_instance_id: str | None = None
        self.next_top_level = 0
        self.current_top_level: _SimTask | None = None
        self.advancing = False

    # -- id allocation ------------------------------------------------------------------------
    def _allocate(self, kind: str, make: Callable[[int], Decision], is_open: bool = True) -> _SimTask:
        event_id = self.seq
        self.seq += 1
        if self.seq > MAX_ORCHESTRATION_ACTIONS:
            self.result.host_error = (
                f"Maximum amount of orchestration actions ({MAX_ORCHESTRATION_ACTIONS}) has been reached. "
                "This value can be configured in host.json file as MaxOrchestrationActions."
            )
            raise _StopReplay
        task = _SimTask()
        self.scheduled[event_id] = _Scheduled(kind, make(event_id), task, is_open)
        return task

    # -- action invocation --------------------------------------------------------------------
    def invoke(self, action: dict[str, Any]) -> _SimTask:
        action_type = action.get("actionType")
        if action_type == ActionType.CALL_ACTIVITY:
            return self._activity(action)
        if action_type == ActionType.CALL_SUB_ORCHESTRATOR:
            return self._sub_orchestration(action)
        if action_type in (ActionType.CALL_ACTIVITY_WITH_RETRY, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY):
            return self._with_retry(action)
        if action_type == ActionType.CREATE_TIMER:
            fire_at = format_timestamp(parse_timestamp(action["fireAt"]))
            canceled = bool(action.get("isCanceled"))
            task = self._allocate("timer", lambda i: CreateTimer(i, fire_at, canceled), is_open=not canceled)
            if canceled:
                task.finish(failed=True)  # TaskCanceledException, swallowed by the shim
            return task
        if action_type == ActionType.WAIT_FOR_EXTERNAL_EVENT:
            return self._wait_for_event(str(action.get("externalEventName")))
        if action_type == ActionType.CONTINUE_AS_NEW:
            self.continue_as_new = ContinueAsNew(action.get("input"))
            task = _SimTask()
            task.finish(failed=False)
            return task
        if action_type in (ActionType.WHEN_ALL, ActionType.WHEN_ANY):
            return self._compound(action)
        if action_type in (
            ActionType.CALL_ENTITY,
            ActionType.SIGNAL_ENTITY,
            ActionType.SCHEDULED_SIGNAL_ENTITY,
        ):
            self.result.unsupported = (
                f"Durable entities (call_entity/signal_entity) are {UNSUPPORTED_SUFFIX}."
            )
            raise _StopReplay
        if action_type == ActionType.CALL_HTTP:
            self.result.unsupported = f"Durable HTTP (call_http) is {UNSUPPORTED_SUFFIX}."
            raise _StopReplay
        self.result.host_error = f"Unknown action type {action_type!r} in the orchestrator's actions."
        raise _StopReplay

    def _activity(self, action: dict[str, Any]) -> _SimTask:
        name = str(action.get("functionName"))
        input_text = action.get("input")
        return self._allocate("activity", lambda i: ScheduleActivity(i, name, input_text))

    def _sub_orchestration(self, action: dict[str, Any]) -> _SimTask:
        name = str(action.get("functionName"))
        input_text = action.get("input")
        explicit = action.get("instanceId")
        if explicit:
            error = self._sub_orchestration_id_error(str(explicit))
            if error:
                self.result.host_error = error
                raise _StopReplay

        def make(event_id: int) -> Decision:
            child_id = str(explicit) if explicit else f"{self.execution_id}:{event_id}"
            return CreateSubOrchestration(event_id, name, child_id, input_text)

        return self._allocate("suborchestration", make)

    def _sub_orchestration_id_error(self, child_id: str) -> str | None:
        if child_id.lower() == self.instance_id.lower():
            return (
                "A sub-orchestration instance cannot have the same instance ID as its parent orchestration."
            )
        if self.parent_instance_id and child_id.lower() == self.parent_instance_id.lower():
            return (
                "A sub-orchestration instance cannot have the same instance ID as the parent "
                "of its parent orchestration."
            )
        if child_id.startswith("@"):
            return "Orchestration instance ids must not start with @."
        return None

    def _with_retry(self, action: dict[str, Any]) -> _SimTask:
        """DTFx RetryInterceptor: attempt, retry timer, next attempt; a zero-delay timer after the last."""
        options = action.get("retryOptions") or {}
        max_attempts = int(options.get("maxNumberOfAttempts", 1))
        first = timedelta(milliseconds=float(options.get("firstRetryIntervalInMilliseconds", 0)))
        coefficient = float(options.get("backoffCoefficient", 1.0) or 1.0)
        max_interval_ms = options.get("maxRetryIntervalInMilliseconds")
        max_interval = (
            timedelta(milliseconds=float(max_interval_ms)) if max_interval_ms else DEFAULT_MAX_RETRY_INTERVAL
        )
        timeout_ms = options.get("retryTimeoutInMilliseconds")
        is_activity = action.get("actionType") == ActionType.CALL_ACTIVITY_WITH_RETRY
        outer = _SimTask()
        first_attempt_time = self.now
        attempts = 0

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            inner = self._activity(action) if is_activity else self._sub_orchestration(action)
            inner.then(after_attempt)

        def after_attempt(task: _SimTask) -> None:
            if not task.failed:
                outer.finish(failed=False)
                return
            now = self._current_time()
            if attempts >= max_attempts:
                self._timer_then(now, lambda _t: outer.finish(failed=True))
                return
            delay = self._retry_delay(
                attempts - 1, first, coefficient, max_interval, timeout_ms, first_attempt_time, now
            )
            if delay <= timedelta(0):
                outer.finish(failed=True)
                return
            self._timer_then(now + delay, lambda _t: attempt())

        if max_attempts < 1:
            outer.finish(failed=True)
        else:
            attempt()
        return outer

    @staticmethod
    def _retry_delay(
        attempt: int,
        first: timedelta,
        coefficient: float,
        max_interval: timedelta,
        timeout_ms: Any,
        first_attempt_time: datetime | None,
        now: datetime,
    ) -> timedelta:
        if (
            timeout_ms
            and first_attempt_time is not None
            and now >= first_attempt_time + timedelta(milliseconds=float(timeout_ms))
        ):
            return timedelta(0)
        delay_ms = first.total_seconds() * 1000.0 * (coefficient**attempt)
        if delay_ms < max_interval.total_seconds() * 1000.0:
            return timedelta(milliseconds=delay_ms)
        return max_interval

    def _current_time(self) -> datetime:
        # ExecutionStarted always precedes completions, and it sets the time.
        return self.now if self.now is not None else datetime.min.replace(tzinfo=UTC)

    def _timer_then(self, fire_at: datetime, callback: Callable[[_SimTask], None]) -> None:
        text = format_timestamp(fire_at)
        self._allocate("timer", lambda i: CreateTimer(i, text)).then(callback)

    def _wait_for_event(self, name: str) -> _SimTask:
        task = _SimTask()
        if self.buffered.get(name):
            self.buffered[name] -= 1
            task.finish(failed=False)
        else:
            self.waiters.setdefault(name, deque()).append(task)
        return task

    def _compound(self, action: dict[str, Any]) -> _SimTask:
        children = [self.invoke(child) for child in action.get("compoundActions") or []]
        outer = _SimTask()
        if action.get("actionType") == ActionType.WHEN_ANY:
            if not children:
                # .NET Task.WhenAny throws synchronously, and the shim lets that fail the orchestration.
                self.result.host_error = "The tasks argument contains no tasks. (Parameter 'tasks')"
                raise _StopReplay
            for child in children:
                child.then(lambda _c: outer.finish(failed=False))
            return outer
        remaining = sum(1 for child in children if not child.done)
        if remaining == 0:
            outer.finish(failed=any(child.failed for child in children))
            return outer

        def child_done(_child: _SimTask) -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0:
                outer.finish(failed=any(child.failed for child in children))

        for child in children:
            if not child.done:
                child.then(child_done)
        return outer

    # -- top-level runner (ProcessAsyncActionsV2) ------------------------------------------------
    def advance_top_level(self, _done: _SimTask | None = None) -> None:
        if self.advancing:
            return
        self.advancing = True
        try:
            while self.next_top_level < len(self.actions):
                if self.current_top_level is not None and not self.current_top_level.done:
                    return
                action = self.actions[self.next_top_level]
                self.next_top_level += 1
                task = self.invoke(action)
                self.current_top_level = task
                if not task.done:
                    task.then(self.advance_top_level)
                    return
        finally:
            self.advancing = False

    # -- history walk ---------------------------------------------------------------------------
    def run(self) -> ReplayResult:
        try:
            for position, event in enumerate(self.history):
                self._process(position, event)
                if self.result.nondeterminism is not None:
                    break
        except _StopReplay:
            pass
        self._finish()
        return self.result

    def _process(self, position: int, event: dict[str, Any]) -> None:
        kind = event.get("EventType")
        if kind == EventType.ORCHESTRATOR_STARTED:
            self.now = parse_timestamp(event["Timestamp"])
        elif kind == EventType.EXECUTION_STARTED:
            instance = event.get("OrchestrationInstance") or {}
            self.instance_id = str(instance.get("InstanceId") or "")
            self.execution_id = str(instance.get("ExecutionId") or "")
            parent = event.get("ParentInstance") or {}
            self.parent_instance_id = (parent.get("OrchestrationInstance") or {}).get("InstanceId")
            if self.now is None:
                self.now = parse_timestamp(event["Timestamp"])
            self.advance_top_level()
        elif kind in _KIND_FOR_EVENT:
            self._match(position, event, _KIND_FOR_EVENT[EventType(kind)])
        elif kind in (EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_COMPLETED):
            self._complete(event.get("TaskScheduledId"), failed=False)
        elif kind in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_FAILED):
            self._complete(event.get("TaskScheduledId"), failed=True)
        elif kind == EventType.TIMER_FIRED:
            self._complete(event.get("TimerId"), failed=False)
        elif kind == EventType.EVENT_RAISED:
            name = str(event.get("Name"))
            waiting = self.waiters.get(name)
            if waiting:
                waiting.popleft().finish(failed=False)
            else:
                self.buffered[name] = self.buffered.get(name, 0) + 1

    def _complete(self, task_id: Any, failed: bool) -> None:
        entry = self.scheduled.get(task_id) if isinstance(task_id, int) else None
        if entry is None or not entry.is_open:
            return  # DTFx ignores completions of unknown or cancelled tasks
        entry.is_open = False
        entry.task.finish(failed)

    def _match(self, position: int, event: dict[str, Any], kind: str) -> None:
        event_id = event.get("EventId")
        name = event.get("Name")
        entry = self.scheduled.get(event_id) if isinstance(event_id, int) else None
        expected = _describe(kind, name)
        if entry is None or event_id in self.matched:
            self.result.nondeterminism = Nondeterminism(
                position,
                int(event_id) if isinstance(event_id, int) else -1,
                expected,
                "nothing",
                f"A previous execution of this orchestration scheduled {expected} with sequence ID "
                f"{event_id}, but the current replay execution hasn't (yet?) scheduled this task. Was a "
                "change made to the orchestrator code after this instance had already started running?",
            )
            return
        actual = _describe(entry.kind, getattr(entry.decision, "name", None))
        same_name = kind == "timer" or str(getattr(entry.decision, "name", "")).lower() == str(name).lower()
        if entry.kind != kind or not same_name:
            self.result.nondeterminism = Nondeterminism(
                position,
                event_id,
                expected,
                actual,
                f"A previous execution of this orchestration scheduled {expected} with sequence number "
                f"{event_id}, but the current orchestration replay instead produced {actual} with this "
                "sequence number. Was a change made to the orchestrator code after this instance had "
                "already started running?",
            )
            return
        self.matched.add(event_id)

    def _finish(self) -> None:
        result = self.result
        result.decisions = [
            entry.decision
            for event_id, entry in sorted(self.scheduled.items())
            if event_id not in self.matched
        ]
        if self.continue_as_new is not None:
            result.decisions.append(self.continue_as_new)
        result.open_tasks = any(entry.is_open for entry in self.scheduled.values())
        result.next_event_id = self.seq


def replay_actions(history: list[dict[str, Any]], actions: list[dict[str, Any]]) -> ReplayResult:
    """Replay the SDK's cumulative ``actions`` against ``history`` like DTFx + the out-of-proc shim.

    Returns the new scheduling decisions (ids without a scheduling event in history, in id order),
    whether DTFx would still have open tasks, and any non-determinism or unsupported API.
    """
    return _Replayer(history, actions).run()
