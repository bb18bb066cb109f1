"""`POST` / `GET /api/modules/{module_id}/generation`: request a run, read its status and progress.

PostgreSQL is the truth for `status`; the orchestration's custom status only adds `progress`.
The durable management URLs are never returned: they carry the task hub's system key.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from pydantic import ValidationError

from clients.db import DatabaseUnavailable, ModuleNotFound, get_module
from clients.services import services
from domain.messages import GenerationRequest, describe_validation_error
from domain.pipeline import Progress
from starters.generation import StartConflict, request_and_start, run_id_of

ROUTE = "modules/{module_id}/generation"
MAX_BODY_BYTES = 16 * 1024

log = logging.getLogger("lesson_orchestrator.http")
bp = df.Blueprint()


@bp.route(route=ROUTE, methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def request_generation_http(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    module_id = _module_id(req)
    if module_id is None:
        return _error(400, "module_id must be a UUID")
    body = req.get_body() or b""
    if len(body) > MAX_BODY_BYTES:
        return _error(413, f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        fields = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, f"body is not JSON: {exc}")
    if not isinstance(fields, dict):
        return _error(400, "body must be a JSON object with optional difficulty, learning_style, request_id")
    allowed = {k: fields[k] for k in ("difficulty", "learning_style", "request_id") if k in fields}
    try:
        request = GenerationRequest.model_validate(
            {"request_id": uuid.uuid4().hex, **allowed, "module_id": module_id}
        )
    except ValidationError as exc:
        return _error(400, describe_validation_error(exc))
    try:
        result = await request_and_start(client, request, await services())
    except ModuleNotFound:
        return _error(404, f"module {module_id} does not exist")
    except (DatabaseUnavailable, StartConflict) as exc:
        return _error(503, str(exc), headers={"Retry-After": "10"})
    payload = {
        "module_id": module_id,
        "request_id": request.request_id,
        "instance_id": result.run.instance_id,
        "status_url": req.url.split("?", 1)[0],
    }
    return _json(202, payload, headers={"Location": payload["status_url"]})


@bp.route(route=ROUTE, methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def generation_status_http(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    module_id = _module_id(req)
    if module_id is None:
        return _error(400, "module_id must be a UUID")
    try:
        module = await get_module((await services()).pool, module_id)
    except DatabaseUnavailable as exc:
        return _error(503, str(exc), headers={"Retry-After": "10"})
    if module is None:
        return _error(404, f"module {module_id} does not exist")
    run = module.current_run
    instance_id = run.run.instance_id if run else None
    custom = None
    if instance_id is not None:
        status = await client.get_status(instance_id)
        if status and run_id_of(status) in (None, run.run.run_id):
            custom = status.custom_status
    return _json(
        200,
        {
            "module_id": module_id,
            "status": module.generation_status,
            "error": module.generation_error,
            "started_at": _iso(module.generation_started_at),
            "completed_at": _iso(module.generation_completed_at),
            "instance_id": instance_id,
            "progress": progress_of(module.generation_status, custom),
            "lessons": module.lesson_count,
        },
    )


def progress_of(status: str, custom: Any) -> dict[str, Any]:
    """The orchestration's progress, with the stage the database status implies when they disagree."""
    progress = Progress().to_dict()
    if isinstance(custom, str):
        try:
            custom = json.loads(custom)
        except ValueError:
            custom = None
    if isinstance(custom, dict) and isinstance(custom.get("research"), dict):
        progress.update({k: custom[k] for k in ("stage", "research", "lessons") if k in custom})
    if status in ("completed", "failed") or (status == "queued" and progress["stage"] != "queued"):
        progress["stage"] = status
    elif status == "not_started":
        progress["stage"] = "queued" if custom else "not_started"
    return progress


def _module_id(req: func.HttpRequest) -> str | None:
    try:
        return str(uuid.UUID(req.route_params.get("module_id", "")))
    except ValueError:
        return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(payload), status_code=status, mimetype="application/json", headers=headers or {}
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return _json(status, {"error": message}, headers)
