"""Protocol tests: spec-shaped histories fed to the real SDK, compared with replay_actions."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from azure.durable_functions.models.RetryOptions import RetryOptions

from devhost import protocol
from devhost.protocol import EventType
from tests.devhost.protocol_cases import call_sdk, check_recorded_history, ev, started, ts

# The SDK warns whenever an event arrives before its wait; that is the behaviour under test.
pytestmark = pytest.mark.filterwarnings("ignore:Potential duplicate Task completion:UserWarning")

# ---------------------------------------------------------------------------------- orchestrators


def fan_out(context: Any) -> Any:
    cities = ["Tokyo", "Seattle", "London"]
    results = yield context.task_all([context.call_activity("SayHello", c) for c in cities])
    return results


def retry_three(context: Any) -> Any:
    result = yield context.call_activity_with_retry("Flaky", RetryOptions(5000, 3), {"x": 1})
    return result


def retry_two(context: Any) -> Any:
    result = yield context.call_activity_with_retry("Flaky", RetryOptions(5000, 2), {"x": 1})
    return result


def any_with_retry(context: Any) -> Any:
    first = yield context.task_any(
        [context.call_activity_with_retry("A", RetryOptions(1000, 3)), context.call_activity("B")]
    )
    c = yield context.call_activity("C")
    return [first.result, c]


def event_or_timeout(context: Any) -> Any:
    timer = context.create_timer(context.current_utc_datetime + dt.timedelta(seconds=30))
    event = context.wait_for_external_event("Approval")
    winner = yield context.task_any([event, timer])
    if winner == event:
        timer.cancel()
        return (yield context.call_activity("A", winner.result))
    return "timeout"


def long_timer(context: Any) -> Any:
    yield context.create_timer(context.current_utc_datetime + dt.timedelta(days=10))
    return "done"


def sub_orchestrations(context: Any) -> Any:
    a = yield context.call_sub_orchestrator("Child", {"k": 1})
    yield context.call_sub_orchestrator("Child", 2, instance_id="myid")
    return a


def entity_user(context: Any) -> Any:
    value = yield context.call_entity(
        __import__("azure.durable_functions").durable_functions.EntityId("Counter", "k1"), "get"
    )
    return value


def http_user(context: Any) -> Any:
    response = yield context.call_http("GET", "http://127.0.0.1:1/x")
    return response.status_code


def continue_loop(context: Any) -> Any:
    n = context.get_input() or 0
    yield context.call_activity("A", n)
    context.continue_as_new(n + 1)
    return "ignored"


# ---------------------------------------------------------------------------------- request/reply


def test_request_has_the_exact_context_keys_and_double_decoded_input() -> None:
    input_text = json.dumps(json.dumps({"cities": ["Tokyo"]}))
    history = [protocol.orchestrator_started(ts(0)), started(input_text=input_text)]
    request = json.loads(
        protocol.build_orchestrator_request(
            history, instance_id="abc123", input_text=input_text, parent_instance_id=None, is_replaying=False
        )
    )
    assert request == {
        "history": history,
        "input": '{"cities": ["Tokyo"]}',
        "instanceId": "abc123",
        "isReplaying": False,
        "parentInstanceId": None,
        "upperSchemaVersion": 1,
        "upperSchemaVersionNew": 2,
        "longRunningTimerIntervalDuration": "3.00:00:00",
        "maximumShortTimerDuration": "6.00:00:00",
        "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
    }
    # A webhook start stores a JSON object: the SDK then gets a dict (§6.5).
    request = json.loads(
        protocol.build_orchestrator_request(
            history, instance_id="i", input_text='{"a":1}', parent_instance_id="p", is_replaying=True
        )
    )
    assert request["input"] == {"a": 1} and request["parentInstanceId"] == "p"


def test_event_shapes_follow_the_host_table() -> None:
    event = protocol.task_failed(ts(1), 4, "r", "d")
    assert event == {
        "EventType": 6,
        "EventId": -1,
        "IsPlayed": False,
        "Timestamp": "2024-01-01T00:00:01.0000000Z",
        "TaskScheduledId": 4,
        "Reason": "r",
        "Details": "d",
        "FailureDetails": None,
    }
    assert protocol.task_scheduled(ts(0), 3, "A")["EventId"] == 3
    assert set(started()) >= {
        "OrchestrationInstance",
        "ParentInstance",
        "Name",
        "Version",
        "Input",
        "Generation",
    }
    assert (
        protocol.format_timestamp(dt.datetime(2024, 5, 1, 10, 0, 0, 200000, tzinfo=dt.UTC))
        == "2024-05-01T10:00:00.2000000Z"
    )
    assert protocol.parse_timestamp("2024-01-04T00:00:00.000000Z") == dt.datetime(2024, 1, 4, tzinfo=dt.UTC)
    assert protocol.parse_timestamp("2024-05-01T10:00:00.1234567Z").microsecond == 123456


def test_reply_parsing_normal_marker_and_missing_marker() -> None:
    ok = protocol.parse_orchestrator_reply(
        '{"isDone": true, "schemaVersion": 2, "actions": [[]], "output": {"b": "é"}, "customStatus": 0}', None
    )
    assert ok.is_done and ok.output_text == '{"b":"é"}' and ok.actions == []
    assert ok.has_custom_status and ok.custom_status == 0  # the host keeps any non-null value it gets
    assert not protocol.parse_orchestrator_reply('{"isDone": false, "actions": [[]]}', None).has_custom_status
    reply = call_sdk(
        _raises_after_one,
        [
            protocol.orchestrator_started(ts(0)),
            started(),
            protocol.task_scheduled(ts(0), 0, "A"),
            protocol.orchestrator_completed(ts(0)),
            protocol.orchestrator_started(ts(2)),
            protocol.task_completed(ts(1), 0, "1"),
        ],
    )
    assert reply.error == "kaboom" and not reply.is_done
    assert reply.actions == [{"actionType": 0, "functionName": "A", "input": "1"}]
    broken = protocol.parse_orchestrator_reply(None, RuntimeError("SDK internal"))
    assert broken.error is not None
    assert broken.error.startswith("Result: Failure\nException: RuntimeError: SDK internal\nStack: ")
    assert protocol.parse_orchestrator_reply('{"isDone": false, "actions": [[], []]}', None).error


def _raises_after_one(context: Any) -> Any:
    yield context.call_activity("A", 1)
    raise ValueError("kaboom")


def test_texts() -> None:
    assert protocol.orchestrator_failure_text("X", "boom") == "Orchestrator function 'X' failed: boom"
    assert (
        protocol.activity_failure_reason("Flaky", ValueError("boom"))
        == "Activity function 'Flaky' failed: ValueError: boom"
    )
    assert protocol.custom_status_size_error(json.dumps("x" * 8000)) is None
    assert protocol.custom_status_size_error(json.dumps("x" * 9000)) == (
        "The UTF-16 size of the JSON-serialized payload must not exceed 16 KB. "
        "The current payload size is 17 KB."
    )
    assert protocol.unknown_function_text("Nope", "activity", ["b", "a"]) == (
        "The function 'Nope' doesn't exist, is disabled, or is not an activity function. "
        "Additional info: The following are the known activity functions: 'a', 'b'."
    )
    assert protocol.instance_id_error("@x") and protocol.instance_id_error("a/b")
    assert protocol.instance_id_error("x" * 257) and protocol.instance_id_error("a\x01")
    assert protocol.instance_id_error("ok-id:1") is None


# ---------------------------------------------------------------------------------- replay


def test_first_fan_out_episode_schedules_three_activities_in_order() -> None:
    history = [protocol.orchestrator_started(ts(0)), started()]
    reply = call_sdk(fan_out, history)
    result = protocol.replay_actions(history, reply.actions)
    assert result.decisions == [
        protocol.ScheduleActivity(0, "SayHello", '"Tokyo"'),
        protocol.ScheduleActivity(1, "SayHello", '"Seattle"'),
        protocol.ScheduleActivity(2, "SayHello", '"London"'),
    ]
    assert result.open_tasks and result.nondeterminism is None and result.unsupported is None


def _fan_out_history() -> list[dict[str, Any]]:
    return [
        ev(12, -1, False, 0),
        started(),
        ev(4, 0, False, 0.1, Name="SayHello", Version="", Input=None),
        ev(4, 1, False, 0.1, Name="SayHello", Version="", Input=None),
        ev(4, 2, False, 0.1, Name="SayHello", Version="", Input=None),
        ev(13, -1, False, 0.1),
        ev(12, -1, False, 1),
        ev(5, -1, True, 0.9, TaskScheduledId=1, Result='"Hello Seattle!"'),
        ev(5, -1, True, 0.95, TaskScheduledId=0, Result='"Hello Tokyo!"'),
        ev(13, -1, False, 1.1),
        ev(12, -1, False, 2),
        ev(5, -1, False, 1.8, TaskScheduledId=2, Result='"Hello London!"'),
    ]


def test_spec_example_a_fan_out() -> None:
    history = _fan_out_history()
    results = check_recorded_history(fan_out, history)
    assert [r.open_tasks for r in results] == [True, True, False]
    assert call_sdk(fan_out, history).output_text == '["Hello Tokyo!","Hello Seattle!","Hello London!"]'


def _retry_history(final: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        ev(12, -1, False, 0),
        started(),
        ev(4, 0, False, 0.3, Name="Flaky"),
        ev(13, -1, False, 0.3),
        ev(12, -1, False, 1),
        ev(6, -1, True, 0.9, TaskScheduledId=0, Reason="r1", Details="d1"),
        ev(10, 1, False, 1.1, FireAt=ts(6)),
        ev(13, -1, False, 1.1),
        ev(12, -1, False, 6.1),
        ev(11, -1, True, 1.1, TimerId=1, FireAt=ts(6)),
        ev(4, 2, False, 6.2, Name="Flaky"),
        ev(13, -1, False, 6.2),
        ev(12, -1, False, 7),
        ev(6, -1, True, 6.9, TaskScheduledId=2, Reason="r2", Details="d2"),
        ev(10, 3, False, 7.1, FireAt=ts(12)),
        ev(13, -1, False, 7.1),
        ev(12, -1, False, 12.1),
        ev(11, -1, True, 7.1, TimerId=3, FireAt=ts(12)),
        ev(4, 4, False, 12.2, Name="Flaky"),
        ev(13, -1, False, 12.2),
        ev(12, -1, False, 13),
        final,
    ]


def test_spec_example_b_retry_timers_fire_at_orchestrator_started_plus_delay() -> None:
    history = _retry_history(ev(5, -1, False, 12.9, TaskScheduledId=4, Result='{"ok":true}'))
    results = check_recorded_history(retry_three, history)
    assert not results[-1].open_tasks
    assert call_sdk(retry_three, history).output_text == '{"ok":true}'


def test_exhausted_retry_adds_a_zero_delay_dummy_timer_then_fails() -> None:
    history = _retry_history(ev(6, -1, False, 12.9, TaskScheduledId=4, Reason="r3", Details="d3"))
    result = protocol.replay_actions(history, call_sdk(retry_three, history).actions)
    # FireAt = the OrchestratorStarted time of the episode that saw the last failure.
    assert result.decisions == [protocol.CreateTimer(5, ts(13))]
    history += [
        ev(10, 5, False, 13, FireAt=ts(13)),
        ev(13, -1, False, 13),
        ev(12, -1, False, 13.5),
        ev(11, -1, False, 13, TimerId=5, FireAt=ts(13)),
    ]
    reply = call_sdk(retry_three, history)
    assert reply.error == "r3 \n d3"
    check_recorded_history(retry_three, history)


def test_retry_ids_interleave_with_a_task_any_sibling() -> None:
    history = [
        ev(12, -1, False, 0),
        started(),
        ev(4, 0, False, 0, Name="A"),
        ev(4, 1, False, 0, Name="B"),
        ev(13, -1, False, 0),
        ev(12, -1, False, 1),
        ev(6, -1, True, 1, TaskScheduledId=0, Reason="r", Details="d"),
        ev(10, 2, False, 1, FireAt=ts(2)),
        ev(13, -1, False, 1),
        ev(12, -1, False, 2),
        ev(5, -1, True, 2, TaskScheduledId=1, Result='"b"'),
        ev(4, 3, False, 2, Name="C"),
        ev(13, -1, False, 2),
        ev(12, -1, False, 3),
        ev(11, -1, True, 3, TimerId=2, FireAt=ts(2)),
        ev(4, 4, False, 3, Name="A"),
        ev(13, -1, False, 3),
        ev(12, -1, False, 4),
        ev(5, -1, False, 4, TaskScheduledId=3, Result='"c"'),
    ]
    results = check_recorded_history(any_with_retry, history)
    # The retried attempt of A (id 4) is still running: DTFx keeps the instance open.
    assert results[-1].open_tasks
    assert call_sdk(any_with_retry, history).is_done


def test_task_any_with_cancelled_timer() -> None:
    history = [
        ev(12, -1, False, 0),
        started(),
        ev(10, 0, False, 0, FireAt=ts(30)),
        ev(13, -1, False, 0),
        ev(12, -1, False, 5),
        ev(15, -1, False, 5, Name="Approval", Input='"{\\"ok\\": true}"'),
    ]
    first = protocol.replay_actions(history[:2], call_sdk(event_or_timeout, history[:2]).actions)
    assert first.decisions == [protocol.CreateTimer(0, ts(30))]
    reply = call_sdk(event_or_timeout, history)
    result = protocol.replay_actions(history, reply.actions)
    assert result.decisions == [protocol.ScheduleActivity(1, "A", '"{\\"ok\\": true}"')]
    # The cancelled timer no longer counts as open; only the new activity does.
    history += [
        ev(4, 1, False, 5, Name="A"),
        ev(13, -1, False, 5),
        ev(12, -1, False, 6),
        ev(5, -1, False, 6, TaskScheduledId=1, Result='"done"'),
    ]
    final = protocol.replay_actions(history, call_sdk(event_or_timeout, history).actions)
    assert final.decisions == [] and not final.open_tasks


def test_event_raised_before_the_wait_is_buffered() -> None:
    def waits_after_activity(context: Any) -> Any:
        yield context.call_activity("A")
        value = yield context.wait_for_external_event("Go")
        return (yield context.call_activity("B", value))

    history = [
        ev(12, -1, False, 0),
        started(),
        ev(4, 0, False, 0, Name="A"),
        ev(13, -1, False, 0),
        ev(12, -1, False, 1),
        ev(15, -1, True, 1, Name="Go", Input='"x"'),
        ev(13, -1, False, 1),
        ev(12, -1, False, 2),
        ev(5, -1, False, 2, TaskScheduledId=0, Result="null"),
    ]
    reply = call_sdk(waits_after_activity, history)
    result = protocol.replay_actions(history, reply.actions)
    assert result.decisions == [protocol.ScheduleActivity(1, "B", '"x"')]


def test_long_timer_chunks_get_their_own_ids() -> None:
    history = [
        ev(12, -1, False, 0),
        started(),
        ev(10, 0, False, 0, FireAt=ts(3 * 86400)),
        ev(13, -1, False, 0),
        ev(12, -1, False, 3 * 86400),
        ev(11, -1, False, 3 * 86400, TimerId=0, FireAt=ts(3 * 86400)),
    ]
    results = check_recorded_history(long_timer, history)
    assert results[-1].decisions == [protocol.CreateTimer(1, ts(6 * 86400))]


def test_sub_orchestrations_default_and_explicit_ids() -> None:
    history = [ev(12, -1, False, 0), started(execution_id="e1")]
    result = protocol.replay_actions(history, call_sdk(sub_orchestrations, history).actions)
    assert result.decisions == [protocol.CreateSubOrchestration(0, "Child", "e1:0", '{"k": 1}')]
    history += [
        ev(7, 0, False, 0, Name="Child", InstanceId="e1:0"),
        ev(13, -1, False, 0),
        ev(12, -1, False, 5),
        ev(8, -1, False, 5, TaskScheduledId=0, Result='"r"'),
    ]
    result = protocol.replay_actions(history, call_sdk(sub_orchestrations, history).actions)
    assert result.decisions == [protocol.CreateSubOrchestration(1, "Child", "myid", "2")]
    history += [
        ev(7, 1, False, 5, Name="Child", InstanceId="myid"),
        ev(13, -1, False, 5),
        ev(12, -1, False, 6),
        ev(
            9,
            -1,
            False,
            6,
            TaskScheduledId=1,
            Reason="Orchestrator function 'Child' failed: x",
            Details="Message: x, StackTrace: ",
        ),
    ]
    reply = call_sdk(sub_orchestrations, history)
    assert reply.error == "Orchestrator function 'Child' failed: x \n Message: x, StackTrace: "


def test_continue_as_new_is_a_decision_without_an_id() -> None:
    history = [
        ev(12, -1, False, 0),
        started(input_text='"1"'),
        ev(4, 0, False, 0, Name="A"),
        ev(13, -1, False, 0),
        ev(12, -1, False, 5),
        ev(5, -1, False, 5, TaskScheduledId=0, Result="null"),
    ]
    reply = call_sdk(continue_loop, history, input_text='"1"')
    result = protocol.replay_actions(history, reply.actions)
    assert reply.is_done and result.decisions == [protocol.ContinueAsNew("2")] and not result.open_tasks


@pytest.mark.parametrize("orchestrator, text", [(entity_user, "call_entity"), (http_user, "call_http")])
def test_entities_and_http_are_reported_unsupported(orchestrator: Any, text: str) -> None:
    history = [ev(12, -1, False, 0), started()]
    result = protocol.replay_actions(history, call_sdk(orchestrator, history).actions)
    assert result.unsupported is not None and text in result.unsupported
    assert result.unsupported.endswith("not supported by devhost.")


def test_changed_code_is_reported_as_nondeterminism() -> None:
    history = _fan_out_history()
    history[3] = ev(4, 1, False, 0.1, Name="SayGoodbye", Version="", Input=None)
    result = protocol.replay_actions(history, call_sdk(fan_out, history).actions)
    assert result.nondeterminism is not None
    assert (result.nondeterminism.position, result.nondeterminism.event_id) == (3, 1)
    assert "SayGoodbye" in result.nondeterminism.expected and "SayHello" in result.nondeterminism.actual

    history = [*_fan_out_history()[:6], ev(4, 3, False, 0.1, Name="Extra")]
    result = protocol.replay_actions(history, call_sdk(fan_out, history).actions)
    assert result.nondeterminism is not None and result.nondeterminism.actual == "nothing"
    assert "hasn't (yet?) scheduled" in result.nondeterminism.message


def test_explicit_sub_orchestration_id_equal_to_parent_is_a_host_error() -> None:
    def self_child(context: Any) -> Any:
        yield context.call_sub_orchestrator("Child", None, instance_id="ABC123")

    history = [ev(12, -1, False, 0), started()]
    result = protocol.replay_actions(history, call_sdk(self_child, history).actions)
    assert result.host_error is not None and "same instance ID" in result.host_error


def test_replay_cost_is_linear_for_a_large_fan_out() -> None:
    # Correctness at size: 2,000 activities completed in one batch leave nothing open.
    n = 2000
    actions = [
        {
            "actionType": 12,
            "compoundActions": [{"actionType": 0, "functionName": "A", "input": str(i)} for i in range(n)],
        }
    ]
    history = [ev(12, -1, False, 0), started()]
    history += [ev(4, i, False, 0, Name="A") for i in range(n)] + [ev(13, -1, False, 0), ev(12, -1, False, 1)]
    history += [ev(5, -1, False, 1, TaskScheduledId=i, Result="1") for i in reversed(range(n))]
    result = protocol.replay_actions(history, actions)
    assert result.decisions == [] and not result.open_tasks
    assert EventType(history[-1]["EventType"]) is EventType.TASK_COMPLETED


def test_fast_timestamp_parser_gives_the_sdk_the_same_values_as_dateutil() -> None:
    from dateutil.parser import parse as dateutil_parse

    from devhost.workers import _fast_parse_uncached

    for text in [
        "2024-05-01T10:00:00.2000000Z",
        "2024-05-01T10:00:00.1234567Z",
        "2024-01-04T00:00:00.000000Z",
        "2024-01-04T00:00:00Z",
        "2024-01-04T01:00:00+01:00",
        "2024-01-04 00:00:00",
    ]:
        fast, slow = _fast_parse_uncached(text), dateutil_parse(text)
        assert (fast, fast.tzinfo, str(fast)) == (slow, slow.tzinfo, str(slow))


def test_when_all_with_a_failed_child_still_waits_for_every_child() -> None:
    def tolerant(context: Any) -> Any:
        failed = False
        try:
            yield context.task_all([context.call_activity("A"), context.call_activity("B")])
        except Exception:
            failed = True
        return [failed, (yield context.call_activity("C"))]

    history = [ev(12, -1, False, 0), started(), ev(4, 0, False, 0, Name="A"), ev(4, 1, False, 0, Name="B"),
               ev(13, -1, False, 0), ev(12, -1, False, 1),
               ev(6, -1, False, 1, TaskScheduledId=0, Reason="r", Details="d")]
    reply = call_sdk(tolerant, history)
    assert reply.actions[-1]["functionName"] == "C"  # the SDK already moved on...
    result = protocol.replay_actions(history, reply.actions)
    assert result.decisions == [] and result.open_tasks  # ...but Task.WhenAll waits for B first
    history += [ev(13, -1, False, 1), ev(12, -1, False, 2),
                ev(5, -1, False, 2, TaskScheduledId=1, Result="1")]
    result = protocol.replay_actions(history, call_sdk(tolerant, history).actions)
    assert result.decisions == [protocol.ScheduleActivity(2, "C", "null")]


def test_task_any_of_nothing_is_a_host_error() -> None:
    def any_of_nothing(context: Any) -> Any:
        result = yield context.task_any([])
        return result

    history = [ev(12, -1, False, 0), started()]
    # SDK 1.7.0 treats an empty task_any as already done and sends no action for it...
    assert call_sdk(any_of_nothing, history).actions == []
    # ...but an empty WhenAny action would make .NET's Task.WhenAny throw in the host.
    result = protocol.replay_actions(history, [{"actionType": 11, "compoundActions": []}])
    assert result.host_error == "The tasks argument contains no tasks. (Parameter 'tasks')"
