"""A queue function that runs longer than the lock: the host must renew the lock (no redelivery)."""

import asyncio
import os
from pathlib import Path

import azure.functions as func

app = func.FunctionApp()


@app.service_bus_queue_trigger(arg_name="msg", queue_name="long", connection="ServiceBusConnection")
async def long_running(msg: func.ServiceBusMessage) -> None:
    trace = Path(os.environ["HOST_TEST_TRACE_DIR"]) / "long.log"
    with open(trace, "a", encoding="utf-8") as handle:
        handle.write(f"start {msg.message_id} {msg.delivery_count}\n")
    await asyncio.sleep(3)  # three lock durations of the test
    with open(trace, "a", encoding="utf-8") as handle:
        handle.write(f"end {msg.message_id} {msg.delivery_count}\n")
