"""Activities that move the run through its states (all fenced: a superseded run changes nothing)."""

from __future__ import annotations

from typing import Any

from activities.context import run_key
from clients.db import WriteResult, mark_in_progress
from clients.db import fail_run as record_failure
from clients.db.drafts import complete_run_from_drafts
from clients.services import services


async def begin_run(payload: dict[str, Any]) -> dict[str, Any]:
    result = await mark_in_progress((await services()).pool, run_key(payload))
    return {"current": result is not WriteResult.FENCED}


async def complete_run(payload: dict[str, Any]) -> dict[str, Any]:
    numbers = [int(n) for n in payload["numbers"]]
    result = await complete_run_from_drafts((await services()).pool, run_key(payload), numbers)
    status = "superseded" if result is WriteResult.FENCED else "completed"
    return {"status": status, "lessons": len(numbers) if status == "completed" else 0}


async def fail_run(payload: dict[str, Any]) -> dict[str, Any]:
    result = await record_failure((await services()).pool, run_key(payload), str(payload["error"]))
    return {"status": "failed" if result is not WriteResult.FENCED else "superseded"}
