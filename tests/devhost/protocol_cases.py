"""Recorded host histories from durable-protocol.md (§2.3, §2.4, evidence sim*.py) and a checker.

The checker replays a recorded history episode by episode through the REAL SDK and through
``replay_actions``, and compares the decisions with the scheduling events the host recorded.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import azure.durable_functions as df

from devhost import protocol
from devhost.protocol import EventType

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
SCHEDULING = {
    EventType.TASK_SCHEDULED: "activity",
    EventType.TIMER_CREATED: "timer",
    EventType.SUB_ORCHESTRATION_CREATED: "suborchestration",
    EventType.EVENT_SENT: "eventsent",
}


def ts(seconds: float) -> str:
    return protocol.format_timestamp(T0 + dt.timedelta(seconds=seconds))


def ev(kind: int, event_id: int, played: bool, seconds: float, **fields: Any) -> dict[str, Any]:
    event = {"EventType": kind, "EventId": event_id, "IsPlayed": played, "Timestamp": ts(seconds)}
    event.update(fields)
    return event


def started(
    seconds: float = 0, name: str = "O", input_text: str | None = None, execution_id: str = "e1"
) -> dict[str, Any]:
    return protocol.execution_started(
        ts(seconds), instance_id="abc123", execution_id=execution_id, name=name, input_text=input_text
    )


def call_sdk(
    orchestrator: Callable[..., Any], history: list[dict[str, Any]], input_text: str | None = None
) -> protocol.OrchestratorReply:
    handle = df.Orchestrator.create(orchestrator)
    request = protocol.build_orchestrator_request(
        history, instance_id="abc123", input_text=input_text, parent_instance_id=None, is_replaying=True
    )
    try:
        return protocol.parse_orchestrator_reply(handle(request), None)
    except Exception as exc:
        return protocol.parse_orchestrator_reply(None, exc)


def decision_key(decision: protocol.Decision) -> tuple[Any, ...]:
    if isinstance(decision, protocol.ScheduleActivity):
        return (decision.event_id, "activity", decision.name)
    if isinstance(decision, protocol.CreateTimer):
        return (decision.event_id, "timer", decision.fire_at)
    if isinstance(decision, protocol.CreateSubOrchestration):
        return (decision.event_id, "suborchestration", decision.name)
    if isinstance(decision, protocol.SendEvent):
        return (decision.event_id, "eventsent", decision.name)
    return ("continue_as_new", decision.input_text)


def recorded_key(event: dict[str, Any]) -> tuple[Any, ...]:
    kind = SCHEDULING[EventType(event["EventType"])]
    detail = (
        protocol.format_timestamp(protocol.parse_timestamp(event["FireAt"]))
        if kind == "timer"
        else event["Name"]
    )
    return (event["EventId"], kind, detail)


def episodes(history: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(end of the episode's request prefix, end of its scheduling events) per episode."""
    starts = [i for i, e in enumerate(history) if e["EventType"] == EventType.ORCHESTRATOR_STARTED]
    bounds = []
    for number, start in enumerate(starts):
        stop = starts[number + 1] if number + 1 < len(starts) else len(history)
        cut = start + 1
        while (
            cut < stop
            and history[cut]["EventType"] not in SCHEDULING
            and history[cut]["EventType"]
            not in (EventType.ORCHESTRATOR_COMPLETED, EventType.EXECUTION_COMPLETED)
        ):
            cut += 1
        bounds.append((cut, stop))
    return bounds


def check_recorded_history(
    orchestrator: Callable[..., Any], history: list[dict[str, Any]], input_text: str | None = None
) -> list[protocol.ReplayResult]:
    """Assert that every recorded episode's scheduling events are what the replay decides now.

    The last episode of a history that ends without OrchestratorCompleted has nothing recorded yet;
    its result is returned for the caller to check.
    """
    results = []
    for cut, stop in episodes(history):
        prefix = history[:cut]
        reply = call_sdk(orchestrator, prefix, input_text)
        result = protocol.replay_actions(prefix, reply.actions)
        assert result.nondeterminism is None, result.nondeterminism
        recorded_episode = history[cut:stop]
        if any(e["EventType"] == EventType.ORCHESTRATOR_COMPLETED for e in recorded_episode):
            recorded = [recorded_key(e) for e in recorded_episode if e["EventType"] in SCHEDULING]
            decided = [decision_key(d) for d in result.decisions if not isinstance(d, protocol.ContinueAsNew)]
            assert decided == recorded, (cut, decided, recorded, json.dumps(reply.actions))
        results.append(result)
    return results
