"""An app with one function per trigger kind, for the registry test."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="orchestrators/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="starter")
async def http_start(req: func.HttpRequest, starter: str) -> func.HttpResponse:
    return func.HttpResponse("ok")


@app.service_bus_queue_trigger(arg_name="msg", queue_name="jobs", connection="ServiceBusConnection")
@app.durable_client_input(client_name="client")
async def on_message(msg: func.ServiceBusMessage, client: Any) -> None:
    return None


@app.orchestration_trigger(context_name="ctx", orchestration="NamedOrchestrator")
def orchestrator_function(ctx: df.DurableOrchestrationContext) -> Any:
    return None
    yield


@app.activity_trigger(input_name="payload", activity="NamedActivity")
async def activity_function(payload: Any) -> Any:
    return payload


@app.activity_trigger(input_name="city")
def plain_activity(city: str) -> str:
    return city


@app.entity_trigger(context_name="context", entity_name="Counter")
def counter_entity(context: df.DurableEntityContext) -> None:
    return None


@app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer")
def every_five_minutes(timer: func.TimerRequest) -> None:
    return None
