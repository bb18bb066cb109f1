"""clients/durable_management.py against a loopback server that answers like the Functions host's
durable management API (status codes and bodies as the host and the devhost send them)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from clients.durable_management import (
    ManagementEndpoint,
    ManagementError,
    TerminateOutcome,
    get_instance,
    terminate_instance,
)
from tests.clients.loopback import serve

KEY = "Sentinel-System-Key-93ac"


def host_app(calls: list[tuple[str, str, dict[str, str]]]) -> web.Application:
    instances: dict[str, dict[str, Any]] = {
        "module-1": {"runtimeStatus": "Running", "input": json.dumps({"run_id": "r1"}),
                     "customStatus": {"stage": "generating"}},
        "module-2": {"runtimeStatus": "Completed"},
    }

    async def status(request: web.Request) -> web.Response:
        calls.append(("GET", request.path, dict(request.query)))
        instance = instances.get(request.match_info["id"])
        if request.match_info["id"] == "broken":
            return web.Response(status=500, text=f"boom {KEY}")
        return web.json_response(instance) if instance else web.Response(status=404)

    async def terminate(request: web.Request) -> web.Response:
        calls.append(("POST", request.path, dict(request.query)))
        instance = instances.get(request.match_info["id"])
        if instance is None:
            return web.Response(status=404)
        if instance["runtimeStatus"] != "Running":
            return web.Response(status=410)
        instance["runtimeStatus"] = "Terminated"
        return web.Response(status=202)

    app = web.Application()
    app.router.add_get("/runtime/webhooks/durabletask/instances/{id}", status)
    app.router.add_post("/runtime/webhooks/durabletask/instances/{id}/terminate", terminate)
    return app


def test_endpoint_parsing_keeps_the_key_query_and_accepts_the_webhook_url() -> None:
    endpoint = ManagementEndpoint.parse(f"https://app.azurewebsites.net/?code={KEY}")
    assert endpoint.base_url == "https://app.azurewebsites.net"
    assert endpoint.url("/instances/x", reason="r") == (
        f"https://app.azurewebsites.net/runtime/webhooks/durabletask/instances/x?code={KEY}&reason=r")
    assert endpoint.display == "https://app.azurewebsites.net"
    same = ManagementEndpoint.parse("http://127.0.0.1:7071/runtime/webhooks/durabletask/")
    assert same.url("/instances/x") == "http://127.0.0.1:7071/runtime/webhooks/durabletask/instances/x"
    for bad in ("127.0.0.1:7071", "ftp://host", ""):
        with pytest.raises(ValueError, match="http"):
            ManagementEndpoint.parse(bad)


async def test_status_terminate_outcomes_and_the_key_on_every_call() -> None:
    calls: list[tuple[str, str, dict[str, str]]] = []
    async with serve(host_app(calls)) as base:
        endpoint = ManagementEndpoint.parse(f"{base}?code={KEY}")
        running = await get_instance(endpoint, "module-1")
        assert running is not None and running["customStatus"] == {"stage": "generating"}
        assert await get_instance(endpoint, "missing") is None
        accepted = await terminate_instance(endpoint, "module-1", "cancelled by operator")
        assert accepted is TerminateOutcome.ACCEPTED
        assert await terminate_instance(endpoint, "module-1", "again") is TerminateOutcome.ALREADY_ENDED
        assert await terminate_instance(endpoint, "missing", "x") is TerminateOutcome.NOT_FOUND
        with pytest.raises(ManagementError) as failure:
            await get_instance(endpoint, "broken")
    assert "HTTP 500" in str(failure.value)
    assert KEY not in str(failure.value)  # the key is registered as a secret and redacted
    assert all(query.get("code") == KEY for _, _, query in calls)
    assert ("POST", "/runtime/webhooks/durabletask/instances/module-1/terminate",
            {"code": KEY, "reason": "cancelled by operator"}) in calls


async def test_an_unreachable_host_is_one_clear_error_without_the_key() -> None:
    async with serve(web.Application()) as base:
        pass  # the port is free again: nothing listens there now
    endpoint = ManagementEndpoint.parse(f"{base}?code={KEY}")
    with pytest.raises(ManagementError) as failure:
        await terminate_instance(endpoint, "module-1", "x")
    assert "POST" in str(failure.value) and "failed" in str(failure.value)
    assert KEY not in str(failure.value)
