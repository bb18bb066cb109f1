"""Tell the web app a run ended (COMPLETION_WEBHOOK_URL); a failed notification is logged, never raised."""

from __future__ import annotations

import logging
from typing import Any

from activities.context import run_key
from clients.db import get_module, get_run
from clients.services import services
from clients.webhook import post_completion

log = logging.getLogger("lesson_orchestrator.webhook")


async def notify_completion(payload: dict[str, Any]) -> dict[str, Any]:
    shared = await services()
    url, secret = shared.settings.completion_webhook_url, shared.settings.completion_webhook_secret
    if not url or not secret:
        return {"delivered": False, "attempts": 0, "error": "COMPLETION_WEBHOOK_URL is not set"}
    run = run_key(payload)
    record = await get_run(shared.pool, run.run_id)
    module = await get_module(shared.pool, run.module_id)
    if record is None:
        return {"delivered": False, "attempts": 0, "error": f"run {run.run_id} not found"}
    completed = record.status == "completed"
    body = {
        "module_id": run.module_id,
        "request_id": record.run.request_id,
        "status": record.status,
        "error": record.error,
        "lessons": module.lesson_count if completed and module is not None else 0,
        "completed_at": record.finished_at.isoformat() if record.finished_at else None,
    }
    delivery = await post_completion(url, secret, body)
    if not delivery.delivered:
        log.warning(
            "completion webhook for module %s failed after %d attempts: %s",
            run.module_id, delivery.attempts, delivery.error,
            extra={"module_id": run.module_id, "run_id": run.run_id, "outcome": "failed"},
        )
    return delivery.to_dict()
