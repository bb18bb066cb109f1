"""A Durable Functions app exercising the engine: one orchestrator per behaviour under test."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.RetryOptions import RetryOptions

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# Test-controlled switches: the code of an orchestrator that "changes" between episodes, and gates
# that hold an activity until the test opens them.
SWITCHES: dict[str, Any] = {"flip": False}
GATES: dict[str, asyncio.Event] = {}


# ------------------------------------------------------------------------------------ activities


@app.activity_trigger(input_name="value")
def Echo(value: Any) -> Any:
    return value


@app.activity_trigger(input_name="name")
async def Hello(name: str) -> str:
    return f"Hello {name}!"


@app.activity_trigger(input_name="value")
def Flaky(value: Any) -> Any:
    return value


@app.activity_trigger(input_name="value")
def AlwaysFails(value: Any) -> Any:
    raise ValueError(f"nope {value}")


@app.activity_trigger(input_name="gate")
async def WaitGate(gate: str) -> str:
    await GATES.setdefault(gate, asyncio.Event()).wait()
    return f"opened {gate}"


@app.activity_trigger(input_name="value")
def Unserialisable(value: Any) -> Any:
    return {1, 2}


# ------------------------------------------------------------------------------------ orchestrators


@app.orchestration_trigger(context_name="context")
def FanOut(context: df.DurableOrchestrationContext) -> Any:
    names = context.get_input()
    results = yield context.task_all([context.call_activity("Hello", n) for n in names])
    return results


@app.orchestration_trigger(context_name="context")
def RetryFlaky(context: df.DurableOrchestrationContext) -> Any:
    result = yield context.call_activity_with_retry("Flaky", RetryOptions(5000, 3), context.get_input())
    return result


@app.orchestration_trigger(context_name="context")
def RetryExhausted(context: df.DurableOrchestrationContext) -> Any:
    try:
        yield context.call_activity_with_retry("AlwaysFails", RetryOptions(1000, 2), "x")
    except Exception as error:  # the text of the last failure reaches user code
        return str(error)
    return "unexpected success"


@app.orchestration_trigger(context_name="context")
def Child(context: df.DurableOrchestrationContext) -> Any:
    value = context.get_input()
    greeting = yield context.call_activity("Hello", value["name"])
    return {"greeting": greeting, "parent": context.parent_instance_id}


@app.orchestration_trigger(context_name="context")
def FailingChild(context: df.DurableOrchestrationContext) -> Any:
    yield context.call_activity("Echo", 1)
    raise RuntimeError("child broke")


@app.orchestration_trigger(context_name="context")
def FlakyChild(context: df.DurableOrchestrationContext) -> Any:
    value = yield context.call_activity("Flaky", "child")
    return value


@app.orchestration_trigger(context_name="context")
def Parent(context: df.DurableOrchestrationContext) -> Any:
    first = yield context.call_sub_orchestrator("Child", {"name": "A"})
    second = yield context.call_sub_orchestrator("Child", {"name": "B"}, instance_id="named-child")
    try:
        yield context.call_sub_orchestrator("FailingChild", None)
    except Exception as error:
        failure = str(error)
    retried = yield context.call_sub_orchestrator_with_retry("FlakyChild", RetryOptions(1000, 3), None)
    return {"first": first, "second": second, "failure": failure, "retried": retried}


@app.orchestration_trigger(context_name="context")
def HourTimer(context: df.DurableOrchestrationContext) -> Any:
    start = context.current_utc_datetime
    yield context.create_timer(start + dt.timedelta(hours=1))
    return [start.isoformat(), context.current_utc_datetime.isoformat()]


@app.orchestration_trigger(context_name="context")
def LongTimer(context: df.DurableOrchestrationContext) -> Any:
    start = context.current_utc_datetime
    yield context.create_timer(start + dt.timedelta(days=10))
    return (context.current_utc_datetime - start).days


@app.orchestration_trigger(context_name="context")
def EventOrTimeout(context: df.DurableOrchestrationContext) -> Any:
    timeout = context.create_timer(context.current_utc_datetime + dt.timedelta(minutes=30))
    approval = context.wait_for_external_event("Approval")
    winner = yield context.task_any([approval, timeout])
    if winner == approval:
        timeout.cancel()
        return {"approved": winner.result}
    return "timed out"


@app.orchestration_trigger(context_name="context")
def WaitAfterWork(context: df.DurableOrchestrationContext) -> Any:
    yield context.call_activity("WaitGate", context.get_input())
    value = yield context.wait_for_external_event("Go")
    return value


@app.orchestration_trigger(context_name="context")
def Counter(context: df.DurableOrchestrationContext) -> Any:
    count = context.get_input() or 0
    yield context.call_activity("Echo", count)
    if count < 3:
        context.continue_as_new(count + 1)
        return None
    return {"count": count, "instance": context.instance_id}


@app.orchestration_trigger(context_name="context")
def Status(context: df.DurableOrchestrationContext) -> Any:
    context.set_custom_status({"step": 1})
    yield context.call_activity("Echo", 1)
    context.set_custom_status({"step": 2, "note": "é"})
    value = yield context.wait_for_external_event("Go")
    return value


@app.orchestration_trigger(context_name="context")
def BigStatus(context: df.DurableOrchestrationContext) -> Any:
    context.set_custom_status("x" * 9500)
    yield context.call_activity("Echo", 1)
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def Boom(context: df.DurableOrchestrationContext) -> Any:
    yield context.call_activity("Echo", 1)
    raise ValueError("kaboom")


@app.orchestration_trigger(context_name="context")
def Deterministic(context: df.DurableOrchestrationContext) -> Any:
    seen = []
    for _ in range(3):
        marker = {"uuid": str(context.new_uuid()), "time": context.current_utc_datetime.isoformat()}
        seen.append(marker)
        yield context.call_activity("Echo", marker)
    return seen


@app.orchestration_trigger(context_name="context")
def RaceWithLoser(context: df.DurableOrchestrationContext) -> Any:
    fast = context.call_activity("Echo", "fast")
    slow = context.call_activity("WaitGate", context.get_input())
    winner = yield context.task_any([fast, slow])
    return winner.result


@app.orchestration_trigger(context_name="context")
def Flip(context: df.DurableOrchestrationContext) -> Any:
    if SWITCHES["flip"]:
        yield context.call_activity("Hello", "x")
    else:
        yield context.call_activity("WaitGate", "flip")
    return "done"


@app.orchestration_trigger(context_name="context")
def UsesEntity(context: df.DurableOrchestrationContext) -> Any:
    value = yield context.call_entity(df.EntityId("Counter", "k"), "get")
    return value


@app.orchestration_trigger(context_name="context")
def UsesHttp(context: df.DurableOrchestrationContext) -> Any:
    response = yield context.call_http("GET", "http://127.0.0.1:9/")
    return response.status_code


@app.orchestration_trigger(context_name="context")
def CallsMissing(context: df.DurableOrchestrationContext) -> Any:
    yield context.call_activity("NoSuchActivity", 1)


@app.orchestration_trigger(context_name="context")
def BadOutput(context: df.DurableOrchestrationContext) -> Any:
    try:
        yield context.call_activity("Unserialisable", 1)
    except Exception as error:
        return str(error)
    return "unexpected"


@app.orchestration_trigger(context_name="context", orchestration="Renamed")
def renamed_orchestrator(context: df.DurableOrchestrationContext) -> Any:
    return context.get_input()
    yield  # a generator, as orchestrators are
