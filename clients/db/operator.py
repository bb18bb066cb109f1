"""Operator actions on a module's generation (lessonctl cancel, status --request), on top of the run
fence in runs.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum

import asyncpg

from clients.db.runs import ACTIVE, RunRecord, RunRef, WriteResult, fail_run, get_module, get_run

CANCELLED_BY_OPERATOR = "cancelled by operator"
_ATTEMPTS = 3  # a new run may replace the one we read between the read and the fenced write


class CancelOutcome(Enum):
    CANCELLED = "cancelled"  # the active run is now failed with the reason
    NOT_ACTIVE = "not_active"  # nothing queued or in progress
    UNKNOWN_MODULE = "unknown_module"


@dataclass(frozen=True)
class CancelResult:
    outcome: CancelOutcome
    status: str | None  # the module's generation_status afterwards
    run: RunRef | None  # the run cancelled (or the module's last run)


async def cancel_generation(
    pool: asyncpg.Pool, module_id: str, reason: str = CANCELLED_BY_OPERATOR
) -> CancelResult:
    """Fail the module's active run with `reason`. The write is fenced on the run: the orchestration's
    later writes for that run are ignored, and a run that completed meanwhile is never turned failed."""
    for _ in range(_ATTEMPTS):
        module = await get_module(pool, module_id)
        if module is None:
            return CancelResult(CancelOutcome.UNKNOWN_MODULE, None, None)
        current = module.current_run
        last_run = current.run if current else None
        if current is None or current.status not in ACTIVE or module.generation_status not in ACTIVE:
            return CancelResult(CancelOutcome.NOT_ACTIVE, module.generation_status, last_run)
        written = await fail_run(pool, current.run, reason)
        if written is not WriteResult.FENCED:
            return CancelResult(CancelOutcome.CANCELLED, "failed", current.run)
        # FENCED: the run ended or was replaced since we read it; look again.
    return CancelResult(CancelOutcome.NOT_ACTIVE, module.generation_status, last_run)


async def run_for_request(pool: asyncpg.Pool, module_id: str, request_id: str) -> RunRecord | None:
    """The run a request created or joined, once a starter has applied it (None before that)."""
    try:
        key = uuid.UUID(str(module_id))
    except ValueError:
        return None
    run_id = await pool.fetchval(
        "SELECT run_id FROM lo_generation_requests WHERE module_id = $1 AND request_id = $2", key, request_id
    )
    return None if run_id is None else await get_run(pool, str(run_id))
