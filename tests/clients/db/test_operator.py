"""clients/db/operator.py: an operator's cancel goes through the run fence; requests map to their run."""

from __future__ import annotations

import uuid

import asyncpg

from clients.db import WriteResult, complete_run, fail_run, get_module, mark_in_progress, request_generation
from clients.db.operator import CANCELLED_BY_OPERATOR, CancelOutcome, cancel_generation, run_for_request
from tests.clients.db.conftest import new_module
from tests.clients.db.test_runs import lessons


async def test_cancel_fails_the_active_run_and_fences_its_later_writes(pool: asyncpg.Pool) -> None:
    module_id = await new_module(pool)
    outcome = await request_generation(pool, module_id, "r1", instance_id=f"module-{module_id}")
    await mark_in_progress(pool, outcome.run)

    result = await cancel_generation(pool, module_id)
    assert result.outcome is CancelOutcome.CANCELLED
    assert result.run == outcome.run
    module = await get_module(pool, module_id)
    assert module is not None
    assert (module.generation_status, module.generation_error) == ("failed", CANCELLED_BY_OPERATOR)
    # The orchestration, still running, cannot complete the cancelled run.
    assert await complete_run(pool, outcome.run, lessons(3)) is WriteResult.FENCED
    assert (await get_module(pool, module_id)).lesson_count == 0  # type: ignore[union-attr]


async def test_cancel_a_queued_run_with_a_reason(pool: asyncpg.Pool) -> None:
    module_id = await new_module(pool)
    await request_generation(pool, module_id, "r1", instance_id=f"module-{module_id}")
    result = await cancel_generation(pool, module_id, f"{CANCELLED_BY_OPERATOR}: duplicate module")
    assert result.outcome is CancelOutcome.CANCELLED
    module = await get_module(pool, module_id)
    assert module is not None and module.generation_error == "cancelled by operator: duplicate module"


async def test_nothing_to_cancel_for_finished_never_requested_and_unknown_modules(pool: asyncpg.Pool) -> None:
    fresh = await new_module(pool)
    assert (await cancel_generation(pool, fresh)).outcome is CancelOutcome.NOT_ACTIVE

    done = await new_module(pool)
    outcome = await request_generation(pool, done, "r1", instance_id=f"module-{done}")
    await mark_in_progress(pool, outcome.run)
    await complete_run(pool, outcome.run, lessons(3))
    result = await cancel_generation(pool, done)
    assert (result.outcome, result.status, result.run) == (CancelOutcome.NOT_ACTIVE, "completed", outcome.run)
    assert (await get_module(pool, done)).generation_status == "completed"  # type: ignore[union-attr]

    failed = await new_module(pool)
    outcome = await request_generation(pool, failed, "r1", instance_id=f"module-{failed}")
    await fail_run(pool, outcome.run, "provider down")
    result = await cancel_generation(pool, failed)
    assert (result.outcome, result.status) == (CancelOutcome.NOT_ACTIVE, "failed")
    assert (await get_module(pool, failed)).generation_error == "provider down"  # type: ignore[union-attr]

    assert (await cancel_generation(pool, str(uuid.uuid4()))).outcome is CancelOutcome.UNKNOWN_MODULE
    assert (await cancel_generation(pool, "not-a-uuid")).outcome is CancelOutcome.UNKNOWN_MODULE


async def test_run_for_request_finds_new_and_joined_requests_only_once_applied(pool: asyncpg.Pool) -> None:
    module_id = await new_module(pool)
    assert await run_for_request(pool, module_id, "r1") is None
    first = await request_generation(pool, module_id, "r1", instance_id=f"module-{module_id}")
    await request_generation(pool, module_id, "r2", instance_id=f"module-{module_id}")  # joins r1's run
    found_first = await run_for_request(pool, module_id, "r1")
    found_joined = await run_for_request(pool, module_id, "r2")
    assert found_first is not None and found_joined is not None
    assert found_first.run.run_id == found_joined.run.run_id == first.run.run_id
    assert found_first.status == "queued"
    assert await run_for_request(pool, str(uuid.uuid4()), "r1") is None
    assert await run_for_request(pool, "not-a-uuid", "r1") is None
