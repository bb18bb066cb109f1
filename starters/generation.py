"""Turn a generation request into (at most) one running orchestration per module.

PostgreSQL decides (request_generation serialises concurrent deliveries on the module row); the
durable client then makes sure the run it decided on is actually running. Every step is safe to
repeat: a redelivered message, or a second delivery racing the first, ends in the same state.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from clients.db import RequestKind, RequestOutcome, RunRef, request_generation
from clients.services import Services
from domain.messages import GenerationRequest
from domain.pipeline import ORCHESTRATOR, RunInput, instance_id_for

log = logging.getLogger("lesson_orchestrator.starter")

ACTIVE = {
    OrchestrationRuntimeStatus.Running,
    OrchestrationRuntimeStatus.Pending,
    OrchestrationRuntimeStatus.Suspended,
    OrchestrationRuntimeStatus.ContinuedAsNew,
}
# A run older than its deadline plus this margin is dead (its orchestration was lost or purged).
STALE_MARGIN = timedelta(minutes=10)
SUPERSEDED_STOP_WAIT_S = 10.0


class StartConflict(RuntimeError):
    """The module's instance id is held by an orchestration of an earlier run that would not stop."""


@dataclass(frozen=True)
class StartResult:
    outcome: RequestOutcome
    started: bool  # this call started the orchestration (False: it was running, or nothing to run)

    @property
    def run(self) -> RunRef:
        return self.outcome.run


async def request_and_start(
    client: df.DurableOrchestrationClient, request: GenerationRequest, services: Services
) -> StartResult:
    """Apply the request to the module's status, then make sure the module's current run is running.

    Raises ModuleNotFound (never succeeds), DatabaseUnavailable / asyncpg errors (transient) and
    StartConflict (transient).
    """
    module_id = str(request.module_id)
    deadline = timedelta(minutes=services.settings.generation_deadline_minutes)
    assert request.request_id is not None  # parse_generation_request defaults it to the message id
    outcome = await request_generation(
        services.pool,
        module_id,
        request.request_id,
        instance_id=instance_id_for(module_id),
        difficulty=request.difficulty,
        learning_style=request.learning_style,
        stale_after=deadline + STALE_MARGIN,
    )
    # A redelivery of the request that created a still-queued run must finish what the first delivery
    # may not have: starting the orchestration (the worker can die between the two steps).
    needs_start = outcome.kind is not RequestKind.REDELIVERY or outcome.status == "queued"
    started = False
    if needs_start:
        run_input = RunInput(
            module_id=outcome.run.module_id,
            run_id=outcome.run.run_id,
            request_id=outcome.run.request_id,
            deadline_minutes=int(services.settings.generation_deadline_minutes),
        )
        started = await ensure_running(client, outcome.run.instance_id, run_input)
    log.info(
        "generation request %s for module %s: %s (run %s%s)",
        request.request_id,
        module_id,
        outcome.kind.value,
        outcome.run.run_id,
        ", orchestration started" if started else "",
        extra={"module_id": module_id, "request_id": request.request_id, "run_id": outcome.run.run_id},
    )
    return StartResult(outcome, started)


async def ensure_running(client: df.DurableOrchestrationClient, instance_id: str, run: RunInput) -> bool:
    """Start the run's orchestration unless it already runs; returns True when this call started it."""
    status = await client.get_status(instance_id, show_input=True)
    if status and status.runtime_status in ACTIVE:
        if run_id_of(status) == run.run_id:
            return False
        await _stop_superseded(client, instance_id, run)
    try:
        await client.start_new(ORCHESTRATOR, instance_id, run.to_dict())
        return True
    except Exception:
        # Another delivery started the same run between our status check and start: that is a join.
        status = await client.get_status(instance_id, show_input=True)
        if status and status.runtime_status in ACTIVE and run_id_of(status) == run.run_id:
            return False
        raise


async def _stop_superseded(client: df.DurableOrchestrationClient, instance_id: str, run: RunInput) -> None:
    """An earlier run still holds the instance id (its writes are already fenced off): end it."""
    await client.terminate(instance_id, f"superseded by run {run.run_id}")
    loop = asyncio.get_running_loop()
    until = loop.time() + SUPERSEDED_STOP_WAIT_S
    while loop.time() < until:
        status = await client.get_status(instance_id)
        if not (status and status.runtime_status in ACTIVE):
            return
        await asyncio.sleep(0.25)
    raise StartConflict(
        f"orchestration {instance_id} of an earlier run did not stop within {SUPERSEDED_STOP_WAIT_S:g}s"
    )


def run_id_of(status: Any) -> str | None:
    """The run id in an instance's input (the Python client stores inputs as JSON text)."""
    value = status.input_
    try:
        if isinstance(value, str):
            value = json.loads(value)
        return str(value["run_id"]) if isinstance(value, dict) else None
    except (ValueError, KeyError, TypeError):
        return None
