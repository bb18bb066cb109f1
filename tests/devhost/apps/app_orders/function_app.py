"""An order-processing function app as a user would write it (v2 model, blueprint + DFApp)."""

import json
import logging
import os

import azure.durable_functions as df
import azure.functions as func
import order_rules

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
# Read at import time on purpose: the loader must apply local.settings.json before importing.
CURRENCY = os.environ["ORDERS_CURRENCY"]


@app.route(route="orders", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_order(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new("ProcessOrder", client_input=req.get_json())
    return client.create_check_status_response(req, instance_id)


@app.service_bus_queue_trigger(arg_name="msg", queue_name="orders", connection="ServiceBusConnection")
@app.durable_client_input(client_name="client")
async def order_from_queue(msg: func.ServiceBusMessage, client: df.DurableOrchestrationClient) -> None:
    order = json.loads(msg.get_body().decode("utf-8"))
    await client.start_new("ProcessOrder", instance_id=order["id"], client_input=order)
    logging.info("started order %s", order["id"])


@app.orchestration_trigger(context_name="context", orchestration="ProcessOrder")
def process_order(context: df.DurableOrchestrationContext):
    order = context.get_input()
    priced = yield context.task_all([context.call_activity("PriceLine", line) for line in order["lines"]])
    total = yield context.call_activity("Total", priced)
    return {"order": order["id"], "total": total, "currency": CURRENCY}


@app.activity_trigger(input_name="line")
def PriceLine(line: dict) -> float:
    return order_rules.line_price(line["qty"], line["unit_price"])


@app.activity_trigger(input_name="prices")
def Total(prices: list) -> float:
    return round(sum(prices), 2)
