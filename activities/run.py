"""Activities that move the run through its states (all fenced: a superseded run changes nothing)."""

from __future__ import annotations

from typing import Any

from activities.context import log_outcome, run_key
from clients.db import WriteResult, mark_in_progress
from clients.db import fail_run as record_failure
from clients.db.drafts import complete_run_from_drafts
from clients.services import services


async def begin_run(payload: dict[str, Any]) -> dict[str, Any]:
    run = run_key(payload)
    result = await mark_in_progress((await services()).pool, run)
    log_outcome("begin_run", run, "current" if result is not WriteResult.FENCED else "superseded")
    return {"current": result is not WriteResult.FENCED}


async def complete_run(payload: dict[str, Any]) -> dict[str, Any]:
    numbers = [int(n) for n in payload["numbers"]]
    run = run_key(payload)
    result = await complete_run_from_drafts((await services()).pool, run, numbers)
    status = "superseded" if result is WriteResult.FENCED else "completed"
    log_outcome("complete_run", run, status, lessons=len(numbers))
    return {"status": status, "lessons": len(numbers) if status == "completed" else 0}


async def fail_run(payload: dict[str, Any]) -> dict[str, Any]:
    run = run_key(payload)
    result = await record_failure((await services()).pool, run, str(payload["error"]))
    log_outcome("fail_run", run, "failed" if result is not WriteResult.FENCED else "superseded",
                error=str(payload["error"]))
    return {"status": "failed" if result is not WriteResult.FENCED else "superseded"}
