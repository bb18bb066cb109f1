"""devhost.replay on hand-built host histories (§2.3 fan-out shape) and exported table rows.

The orchestrators run through the real SDK (`df.Orchestrator.create`); only the history is built
here, with the protocol module's event builders, in the exact shape of durable-protocol.md §2.3.
"""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
import pytest

from devhost import protocol
from devhost.replay import (
    HistoryFormatError,
    ReplayError,
    history_from_events,
    history_from_table_rows,
    parse_history_document,
    replay_history,
    split_episodes,
)

INSTANCE = "7f3c9a2e1b4d4e6f8a0b1c2d3e4f5a6b"
EXECUTION = "0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a"
CITIES = ["Tokyo", "Seattle", "London"]


def at(second: int) -> str:
    return f"2024-05-01T10:00:{second:02d}.0000000Z"


def fan_out_history(*, execution_id: str = EXECUTION, start_second: int = 0) -> list[dict[str, Any]]:
    """Three episodes: start; Seattle + Tokyo complete; London completes and the instance completes."""
    s = start_second
    input_text = json.dumps(json.dumps({"cities": CITIES}))  # the Python client's double encoding (§6.5)
    return [
        protocol.orchestrator_started(at(s)),
        protocol.execution_started(
            at(s), instance_id=INSTANCE, execution_id=execution_id, name="FanOut", input_text=input_text
        ),
        protocol.task_scheduled(at(s), 0, "SayHello"),
        protocol.task_scheduled(at(s), 1, "SayHello"),
        protocol.task_scheduled(at(s), 2, "SayHello"),
        protocol.orchestrator_completed(at(s)),
        protocol.orchestrator_started(at(s + 1)),
        protocol.task_completed(at(s + 1), 1, '"Hello Seattle!"'),
        protocol.task_completed(at(s + 1), 0, '"Hello Tokyo!"'),
        protocol.orchestrator_completed(at(s + 1)),
        protocol.orchestrator_started(at(s + 2)),
        protocol.task_completed(at(s + 2), 2, '"Hello London!"'),
        protocol.execution_completed(
            at(s + 2),
            3,
            protocol.OrchestrationStatus.COMPLETED,
            '["Hello Tokyo!","Hello Seattle!","Hello London!"]',
        ),
        protocol.orchestrator_completed(at(s + 2)),
    ]


def fan_out(context: df.DurableOrchestrationContext):
    cities = context.get_input()["cities"]
    results = yield context.task_all([context.call_activity("SayHello", c) for c in cities])
    return results


def fan_out_renamed(context: df.DurableOrchestrationContext):
    cities = context.get_input()["cities"]
    results = yield context.task_all([context.call_activity("Greet", c) for c in cities])
    return results


def fan_out_then_more(context: df.DurableOrchestrationContext):
    cities = context.get_input()["cities"]
    results = yield context.task_all([context.call_activity("SayHello", c) for c in cities])
    summary = yield context.call_activity("Summarize", results)
    return summary


def fan_out_other_output(context: df.DurableOrchestrationContext):
    cities = context.get_input()["cities"]
    results = yield context.task_all([context.call_activity("SayHello", c) for c in cities])
    return " ".join(results)


def fan_out_crashing(context: df.DurableOrchestrationContext):
    cities = context.get_input()["cities"]
    yield context.task_all([context.call_activity("SayHello", c) for c in cities])
    raise ValueError("results rejected")


def handle(orchestrator_function) -> Any:
    return df.Orchestrator.create(orchestrator_function)


def recorded(events: list[dict[str, Any]]):
    return history_from_events(events, source="test history")


def test_episodes_are_split_at_each_orchestrator_started() -> None:
    episodes = split_episodes(fan_out_history())

    assert [(e.start, e.end) for e in episodes] == [(0, 6), (6, 10), (10, 14)]
    assert episodes[0].incoming == (1,) and episodes[0].scheduled == (2, 3, 4)
    assert episodes[1].incoming == (7, 8) and episodes[1].scheduled == ()
    assert episodes[2].outcome == 12 and all(e.closed for e in episodes)


def test_unchanged_orchestrator_replays_deterministically() -> None:
    report = replay_history(recorded(fan_out_history()), handle(fan_out))

    assert report.deterministic
    assert report.summary() == f"replayed 3 episodes, 14 events of instance {INSTANCE}: deterministic"


def test_renamed_activity_is_reported_at_its_first_scheduling_event() -> None:
    report = replay_history(recorded(fan_out_history()), handle(fan_out_renamed))

    assert report.divergence is not None
    assert (report.divergence.episode, report.divergence.position, report.divergence.event_id) == (1, 2, 0)
    assert report.divergence.describe() == (
        "episode 1, history position 2, EventId 0: "
        "expected TaskScheduled 'SayHello' (EventId 0), code now schedules CallActivity 'Greet'"
    )


def test_extra_step_is_reported_where_the_recorded_episode_completed() -> None:
    report = replay_history(recorded(fan_out_history()), handle(fan_out_then_more))

    assert report.divergence is not None
    assert report.divergence.episode == 3
    assert report.divergence.position == 12
    assert report.divergence.expected.startswith("ExecutionCompleted (Completed) with output [")
    assert report.divergence.actual == "schedules CallActivity 'Summarize' (EventId 3)"


def test_different_output_is_reported_against_execution_completed() -> None:
    report = replay_history(recorded(fan_out_history()), handle(fan_out_other_output))

    assert report.divergence is not None
    assert report.divergence.position == 12
    assert report.divergence.expected.startswith("ExecutionCompleted (Completed) with output [")
    assert report.divergence.actual == 'completes with output "Hello Tokyo! Hello Seattle! Hello London!"'


def test_code_that_now_fails_is_reported_with_its_error() -> None:
    report = replay_history(recorded(fan_out_history()), handle(fan_out_crashing))

    assert report.divergence is not None
    assert report.divergence.episode == 3
    assert report.divergence.actual == "fails: results rejected"


def test_history_still_running_is_replayed_without_judging_the_open_episode() -> None:
    unfinished = fan_out_history()[:12]  # London's completion arrived; the episode was not written yet

    report = replay_history(recorded(unfinished), handle(fan_out))

    assert report.deterministic and report.last_episode_open
    assert "last episode still in progress" in report.summary()


def test_unsupported_api_is_a_replay_error_not_a_divergence() -> None:
    def uses_entities(context: df.DurableOrchestrationContext):
        yield context.call_entity(df.EntityId("Counter", "a"), "add", 1)

    events = [*fan_out_history()[:2], protocol.orchestrator_completed(at(0))]

    with pytest.raises(ReplayError, match="entities"):
        replay_history(recorded(events), handle(uses_entities))


def test_history_must_start_with_orchestrator_started() -> None:
    with pytest.raises(HistoryFormatError, match="must start with an OrchestratorStarted"):
        replay_history(recorded(fan_out_history()[1:]), handle(fan_out))


def test_latest_execution_is_chosen_from_a_continued_history() -> None:
    older = fan_out_history(execution_id="old")
    newer = fan_out_history(execution_id="new", start_second=10)

    history = history_from_events(older + newer, source="two executions")

    assert history.executions_found == 2
    assert history.events[1]["OrchestrationInstance"]["ExecutionId"] == "new"
    assert len(history.events) == 14


# ---------------------------------------------------------------------------------------------- table rows


def table_rows(events: list[dict[str, Any]], *, execution_id: str = EXECUTION) -> list[dict[str, Any]]:
    """Rows as DurableTask.AzureStorage writes them (TableEntityConverter) and an export returns them."""
    rows: list[dict[str, Any]] = [
        {"PartitionKey": INSTANCE, "RowKey": "sentinel", "ExecutionId": execution_id}
    ]
    for sequence, event in enumerate(events):
        row: dict[str, Any] = {
            "PartitionKey": INSTANCE,
            "RowKey": f"{sequence:016X}",
            "Timestamp": "2024-05-01T10:05:00.1234567Z",  # the table's own write time
            "odata.etag": "W/\"datetime'2024-05-01T10%3A05%3A00.1234567Z'\"",
            "ExecutionId": execution_id,
        }
        for key, value in event.items():
            if value is None:
                continue  # table storage does not store nulls
            if key == "Timestamp":
                row["_Timestamp"] = value
                row["_Timestamp@odata.type"] = "Edm.DateTime"
            elif key == "EventType":
                row[key] = protocol_name(value)
            elif key == "OrchestrationStatus":
                row[key] = protocol.OrchestrationStatus(value).name.title().replace("_", "")
            elif isinstance(value, dict | list):
                row[key] = json.dumps(value)
            else:
                row[key] = value
        rows.append(row)
    return rows


def protocol_name(number: int) -> str:
    from devhost.replay import EVENT_TYPE_NAMES

    return EVENT_TYPE_NAMES[number]


def test_table_rows_become_the_host_history() -> None:
    rows = table_rows(fan_out_history())
    rows.reverse()  # exports are not necessarily in RowKey order

    history = history_from_table_rows(rows, source="rows.json")

    assert history.instance_id == INSTANCE
    assert [e["EventType"] for e in history.events] == [e["EventType"] for e in fan_out_history()]
    started = history.events[1]
    assert started["OrchestrationInstance"] == {"InstanceId": INSTANCE, "ExecutionId": EXECUTION}
    assert started["Timestamp"] == at(0)
    assert history.events[12]["OrchestrationStatus"] == 1
    assert replay_history(history, handle(fan_out)).deterministic


def test_rows_of_several_instances_need_an_instance_id() -> None:
    rows = table_rows(fan_out_history()) + [
        {**row, "PartitionKey": "other-instance"} for row in table_rows(fan_out_history())
    ]

    with pytest.raises(HistoryFormatError, match="rows of 2 instances"):
        parse_history_document(rows, source="rows.json")
    assert parse_history_document(rows, source="rows.json", instance_id=INSTANCE).instance_id == INSTANCE


def test_stale_rows_of_an_older_execution_are_left_out() -> None:
    current = table_rows(fan_out_history(), execution_id="current")
    # After continue-as-new the new execution overwrites RowKeys from 0; older rows beyond it remain.
    stale = [
        {**row, "RowKey": f"{int(row['RowKey'], 16) + 20:016X}", "ExecutionId": "older"}
        for row in table_rows(fan_out_history(), execution_id="older")[3:8]
    ]

    history = parse_history_document({"value": current + stale}, source="rows.json")

    assert len(history.events) == 14
    assert history.executions_found == 2


def test_payloads_kept_in_blobs_are_reported_not_guessed() -> None:
    rows = table_rows(fan_out_history())
    completed = rows[13]
    completed["Result"] = ""
    completed["ResultBlobName"] = "3a6c1a2e-result"

    with pytest.raises(HistoryFormatError) as caught:
        parse_history_document(rows, source="rows.json")

    message = str(caught.value)
    assert "Result is in blob '3a6c1a2e-result'" in message
    assert "largemessages" in message


def test_unknown_event_type_name_is_refused() -> None:
    rows = table_rows(fan_out_history())
    rows[2]["EventType"] = "TaskExploded"

    with pytest.raises(HistoryFormatError, match="unknown EventType 'TaskExploded'"):
        parse_history_document(rows, source="rows.json")


def countdown(context: df.DurableOrchestrationContext):
    remaining = context.get_input()
    yield context.call_activity("Tick", remaining)
    if remaining > 0:
        context.continue_as_new(remaining - 1)
        return None
    return "liftoff"


def countdown_by_two(context: df.DurableOrchestrationContext):
    remaining = context.get_input()
    yield context.call_activity("Tick", remaining)
    if remaining > 0:
        context.continue_as_new(remaining - 2)
        return None
    return "liftoff"


def continued_history() -> list[dict[str, Any]]:
    """One execution of a countdown that ended with continue-as-new (kept by Azure Storage histories)."""
    return [
        protocol.orchestrator_started(at(0)),
        protocol.execution_started(
            at(0), instance_id=INSTANCE, execution_id=EXECUTION, name="Countdown", input_text=json.dumps("3")
        ),
        protocol.task_scheduled(at(0), 0, "Tick"),
        protocol.orchestrator_completed(at(0)),
        protocol.orchestrator_started(at(1)),
        protocol.task_completed(at(1), 0, "null"),
        protocol.continued_as_new(at(1), 1, "2"),
        protocol.orchestrator_completed(at(1)),
    ]


def test_continue_as_new_is_compared_with_its_input() -> None:
    same = replay_history(recorded(continued_history()), handle(countdown))
    changed = replay_history(recorded(continued_history()), handle(countdown_by_two))

    assert same.deterministic, same.summary()
    assert changed.divergence is not None
    assert changed.divergence.expected == "ContinueAsNew with input 2"
    assert changed.divergence.actual == "continues as new with input 1"


def test_each_episode_is_a_fresh_in_process_invocation() -> None:
    requests: list[dict[str, Any]] = []
    sdk_handle = handle(fan_out)

    def spying_handle(request: str) -> str:
        requests.append(json.loads(request))
        return sdk_handle(request)

    replay_history(recorded(fan_out_history()), spying_handle)

    assert [len(r["history"]) for r in requests] == [2, 9, 12]
    assert [r["isReplaying"] for r in requests] == [False, True, True]
    # §2.2: earlier message events reach the SDK as played, this episode's as new.
    third = requests[2]["history"]
    assert [e["IsPlayed"] for e in third if e["EventType"] == 5] == [True, True, False]


def test_failure_outside_the_sdk_protocol_shows_the_exception_line() -> None:
    def broken_handle(request: str) -> str:
        raise RuntimeError("worker lost its state")

    report = replay_history(recorded(fan_out_history()), broken_handle)

    assert report.divergence is not None
    assert report.divergence.actual == "fails: RuntimeError: worker lost its state"
