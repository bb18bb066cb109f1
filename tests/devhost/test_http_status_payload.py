"""The status payload and the `historyEvents` transformation of durable-protocol.md §7.2."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from devhost.http import history_events, host_time, parse_json_or_text, status_payload
from devhost.status import InstanceStatus, RuntimeStatus

T0 = "2024-05-01T10:00:00.1000000Z"
T1 = "2024-05-01T10:00:00.3000000Z"
T2 = "2024-05-01T10:00:01.0000000Z"
CHILD_FAILED = "Orchestrator function 'Child' failed: no"


def raw_history() -> list[dict[str, Any]]:
    """Started → activity 0 completed, sub-orchestration 1 failed, timer 2 fired, activity 3 still running."""
    return [
        {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": T0},
        {"EventType": 0, "EventId": -1, "IsPlayed": True, "Timestamp": T0, "Name": "Flow", "Version": "",
         "OrchestrationInstance": {"InstanceId": "i1", "ExecutionId": "e1"}, "ParentInstance": None,
         "Input": '"{\\"a\\": 1}"', "Tags": None, "Correlation": None, "ScheduledStartTime": None,
         "Generation": 0},
        {"EventType": 4, "EventId": 0, "IsPlayed": False, "Timestamp": T1, "Name": "Act", "Version": "",
         "Input": '"x"', "Tags": None},
        {"EventType": 7, "EventId": 1, "IsPlayed": False, "Timestamp": T1, "Name": "Child", "Version": "",
         "InstanceId": "e1:1", "Input": None},
        {"EventType": 10, "EventId": 2, "IsPlayed": False, "Timestamp": T1, "FireAt": T2},
        {"EventType": 4, "EventId": 3, "IsPlayed": False, "Timestamp": T1, "Name": "Slow", "Version": "",
         "Input": None, "Tags": None},
        {"EventType": 13, "EventId": -1, "IsPlayed": False, "Timestamp": T1},
        {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": T2},
        {"EventType": 5, "EventId": -1, "IsPlayed": False, "Timestamp": T2, "TaskScheduledId": 0,
         "Result": '{"ok":true}'},
        {"EventType": 9, "EventId": -1, "IsPlayed": False, "Timestamp": T2, "TaskScheduledId": 1,
         "Reason": CHILD_FAILED, "Details": "Message: no", "FailureDetails": None},
        {"EventType": 11, "EventId": -1, "IsPlayed": False, "Timestamp": T1, "TimerId": 2, "FireAt": T2},
        {"EventType": 15, "EventId": -1, "IsPlayed": False, "Timestamp": T2, "Name": "Go", "Input": '"yes"'},
        {"EventType": 13, "EventId": -1, "IsPlayed": False, "Timestamp": T2},
    ]


def test_history_is_merged_renamed_and_trimmed_without_input_or_output() -> None:
    events = history_events(raw_history(), show_input=False, show_output=False)
    assert events == [
        {"EventType": "ExecutionStarted", "Timestamp": T0, "Correlation": None, "ScheduledStartTime": None,
         "Generation": 0, "FunctionName": "Flow"},
        {"EventType": "TimerCreated", "Timestamp": T1, "FireAt": T2},
        {"EventType": "TaskScheduled", "Timestamp": T1, "Name": "Slow", "Tags": None},
        {"EventType": "TaskCompleted", "Timestamp": T2, "ScheduledTime": T1, "FunctionName": "Act"},
        {"EventType": "SubOrchestrationInstanceFailed", "Timestamp": T2,
         "Reason": CHILD_FAILED, "Details": "Message: no", "FailureDetails": None,
         "ScheduledTime": T1, "FunctionName": "Child"},
        {"EventType": "TimerFired", "Timestamp": T1, "FireAt": T2},
        {"EventType": "EventRaised", "Timestamp": T2, "Name": "Go"},
    ]


def test_history_with_input_and_output_keeps_scheduled_inputs_and_parses_results() -> None:
    events = history_events(raw_history(), show_input=True, show_output=True)
    by_type = {e["EventType"]: e for e in events}
    assert by_type["ExecutionStarted"]["Input"] == '"{\\"a\\": 1}"'  # kept as stored, not parsed
    assert by_type["TaskCompleted"]["Input"] == '"x"'
    assert by_type["TaskCompleted"]["Result"] == {"ok": True}
    assert by_type["SubOrchestrationInstanceFailed"]["Input"] is None
    assert by_type["EventRaised"]["Input"] == '"yes"'
    assert by_type["TaskScheduled"]["Input"] is None


def test_execution_completed_status_name_and_result() -> None:
    raw = [{"EventType": 1, "EventId": 4, "IsPlayed": False, "Timestamp": T2, "OrchestrationStatus": 3,
            "Result": "Orchestrator function 'Flow' failed: boom", "FailureDetails": None}]
    [shown] = history_events(raw, show_input=True, show_output=True)
    assert shown == {"EventType": "ExecutionCompleted", "Timestamp": T2, "OrchestrationStatus": "Failed",
                     "Result": "Orchestrator function 'Flow' failed: boom", "FailureDetails": None}
    [hidden] = history_events(raw, show_input=True, show_output=False)
    assert "Result" not in hidden


def test_status_payload_parses_json_and_falls_back_to_text() -> None:
    created = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    status = InstanceStatus("i1", "Flow", RuntimeStatus.TERMINATED, '"{\\"a\\": 1}"', "stopped by ops",
                            '{"stage":"x"}', created, created, "e1", None)
    payload = status_payload(status, show_input=True)
    assert payload == {
        "name": "Flow", "instanceId": "i1", "runtimeStatus": "Terminated", "input": '{"a": 1}',
        "customStatus": {"stage": "x"}, "output": "stopped by ops",
        "createdTime": "2024-05-01T10:00:00Z", "lastUpdatedTime": "2024-05-01T10:00:00Z",
    }
    assert status_payload(status, show_input=False)["input"] is None
    assert "historyEvents" not in payload


def test_parse_json_or_text_and_host_time() -> None:
    assert parse_json_or_text(None) is None
    assert parse_json_or_text("  [1, 2] ") == [1, 2]
    assert parse_json_or_text("   ") == ""
    assert parse_json_or_text("not json") == "not json"
    assert host_time("2024-05-01T10:00:00.1234567Z") == "2024-05-01T10:00:00Z"
    assert host_time(datetime(2024, 5, 1, 12, 0, tzinfo=UTC)) == "2024-05-01T12:00:00Z"
