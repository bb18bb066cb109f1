"""Example app for the devhost host tests: HTTP + Service Bus starters, orchestrations, activities.

Side effects the tests observe go to files under $HOST_TEST_TRACE_DIR (set by the test).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from datetime import timedelta
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


def _trace(name: str, line: str) -> None:
    folder = os.environ.get("HOST_TEST_TRACE_DIR")
    if folder:
        with open(Path(folder) / name, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


# ---------------------------------------------------------------------------------------------- HTTP


@app.route(route="orchestrators/{functionName}/{instanceId?}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    payload = json.loads(body) if body else None
    instance_id = await client.start_new(
        req.route_params["functionName"], req.route_params.get("instanceId"), payload
    )
    return client.create_check_status_response(req, instance_id)


@app.route(route="hello/{name:alpha}", methods=["GET"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    greeting = req.params.get("greeting", "Hello")
    return func.HttpResponse(f"{greeting}, {req.route_params['name']}!", headers={"X-Devhost-Test": "yes"})


@app.route(route="echo/{id:int}/{part?}", methods=["POST", "PUT"])
async def echo(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(
            {
                "method": req.method,
                "route": dict(req.route_params),
                "params": dict(req.params),
                "body": req.get_body().decode("utf-8"),
                "content_type": req.headers.get("content-type"),
                "url": req.url,
                "invocation_id": context.invocation_id,
                "function_name": context.function_name,
            }
        ),
        mimetype="application/json",
        status_code=201,
    )


@app.route(route="broken")
def broken(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("this HTTP function always fails")


@app.route(route="hang")
def hang(req: func.HttpRequest) -> func.HttpResponse:
    _trace("hang.log", "started")
    time.sleep(600)  # never answers within a test: the host must still stop on SIGTERM
    return func.HttpResponse("woke up")


@app.route(route="jobs/{jobId}", methods=["POST"])
@app.service_bus_queue_output(arg_name="outbox", queue_name="jobs", connection="ServiceBusConnection")
def submit_job(req: func.HttpRequest, outbox: func.Out[str]) -> func.HttpResponse:
    outbox.set(json.dumps({"job_id": req.route_params["jobId"]}))
    return func.HttpResponse("queued", status_code=202)


@app.route(route="status/{instanceId}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def sdk_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    status = await client.get_status(
        req.route_params["instanceId"], show_history=True, show_history_output=True, show_input=True
    )
    if not status:
        return func.HttpResponse("unknown", status_code=404)
    return func.HttpResponse(json.dumps(status.to_json()), mimetype="application/json")


# ---------------------------------------------------------------------------------------------- Service Bus


@app.service_bus_queue_trigger(arg_name="msg", queue_name="jobs", connection="ServiceBusConnection")
@app.durable_client_input(client_name="client")
async def job_starter(msg: func.ServiceBusMessage, client: df.DurableOrchestrationClient) -> None:
    job = json.loads(msg.get_body().decode("utf-8"))
    instance_id = f"job-{job['job_id']}"
    _trace(
        "job_starter.log",
        json.dumps(
            {
                "job_id": job["job_id"],
                "message_id": msg.message_id,
                "delivery": msg.delivery_count,
                "properties": msg.user_properties,
            }
        ),
    )
    existing = await client.get_status(instance_id)
    if existing and existing.runtime_status in (
        df.OrchestrationRuntimeStatus.Running,
        df.OrchestrationRuntimeStatus.Pending,
        df.OrchestrationRuntimeStatus.Completed,
    ):
        logging.info(
            "job %s already has instance %s (%s): duplicate ignored",
            job["job_id"],
            instance_id,
            existing.runtime_status,
        )
        return
    await client.start_new("process_job", instance_id, job)


@app.service_bus_queue_trigger(arg_name="msg", queue_name="poison", connection="ServiceBusConnection")
def poison_handler(msg: func.ServiceBusMessage) -> None:
    _trace("poison.log", f"{msg.message_id} {msg.delivery_count}")
    text = msg.get_body().decode("utf-8")  # raises UnicodeDecodeError for non-UTF-8 bodies
    raise ValueError(f"cannot process {text!r}")


@app.service_bus_queue_trigger(arg_name="msg", queue_name="slow", connection="ServiceBusConnection")
async def slow_handler(msg: func.ServiceBusMessage) -> None:
    _trace("slow.log", f"{msg.message_id} {msg.delivery_count}")
    if msg.delivery_count == 1:
        await asyncio.sleep(4)  # longer than the test's lock duration, renewal disabled in host.json


@app.service_bus_queue_trigger(arg_name="msg", queue_name="returns", connection="ServiceBusConnection")
def returns_a_value(msg: func.ServiceBusMessage) -> str:
    return "nowhere to go"  # no $return binding: the worker fails the invocation


_burst_running = 0


@app.service_bus_queue_trigger(arg_name="msg", queue_name="burst", connection="ServiceBusConnection")
async def burst_handler(msg: func.ServiceBusMessage) -> None:
    global _burst_running
    _burst_running += 1  # all invocations share this process and its event loop
    _trace("burst.log", f"{msg.message_id} running={_burst_running}")
    await asyncio.sleep(0.5)
    _burst_running -= 1


@app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
def every_five_minutes(timer: func.TimerRequest) -> None:
    logging.info("timer fired")


# ---------------------------------------------------------------------------------------------- durable


@app.orchestration_trigger(context_name="context")
def hello_sequence(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    cities = (context.get_input() or {}).get("cities", ["Tokyo", "Seattle", "London"])
    results = []
    for city in cities:
        results.append((yield context.call_activity("say_hello", city)))
    context.set_custom_status({"done": len(results)})
    return results


@app.orchestration_trigger(context_name="context")
def wait_for_approval(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    context.set_custom_status("waiting")
    approval = yield context.wait_for_external_event("Approval")
    return {"approved": approval}


@app.orchestration_trigger(context_name="context")
def failing(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.call_activity("explode", "x")
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def crash_resume(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    first = yield context.call_activity("say_hello", "before")
    gate = yield context.call_activity("wait_for_file", context.get_input())
    second = yield context.call_activity("say_hello", "after")
    return [first, gate, second]


@app.orchestration_trigger(context_name="context")
def process_job(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    job = context.get_input()
    result = yield context.call_activity("say_hello", job["job_id"])
    yield context.create_timer(context.current_utc_datetime + timedelta(milliseconds=10))
    return result


@app.activity_trigger(input_name="city")
def say_hello(city: str) -> str:
    _trace("say_hello.log", city)
    return f"Hello {city}!"


@app.activity_trigger(input_name="value")
def explode(value: str) -> str:
    raise ValueError(f"explode got {value}")


@app.activity_trigger(input_name="path")
async def wait_for_file(path: str) -> str:
    _trace("wait_for_file.log", path)
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        await asyncio.sleep(0.05)
    return Path(path).read_text(encoding="utf-8")
