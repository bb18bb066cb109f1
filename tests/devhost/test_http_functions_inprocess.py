"""HTTP-triggered functions served in-process over real loopback HTTP, with a multi-segment prefix."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import azure.functions as func
import pytest
from aiohttp.test_utils import TestServer

from devhost.engine import Engine
from devhost.http import DurableApi, HttpFunctions, build_web_app, http_routes, run_logged
from devhost.registry import FunctionRegistry
from devhost.triggers import ClientLinks, Invocation, TriggeredFunction


def make_app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="items/{id:int}", methods=["GET"])
    def item(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(f"item {req.route_params['id']}")

    @app.route(route="items/latest", methods=["GET"])
    def latest(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("latest")

    @app.route(route="nothing")
    def nothing(req: func.HttpRequest) -> None:
        return None

    return app


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    functions = make_app().get_functions()
    engine = Engine(FunctionRegistry.from_functions(functions), tmp_path)
    links = ClientLinks(base_url="http://127.0.0.1:0", hub_name="TestHubName")
    logger = logging.getLogger("test.devhost.http")

    async def run(invocation: Invocation) -> object:
        return await run_logged(invocation, reason="HTTP request", logger=logger)

    served = [TriggeredFunction.from_function(f) for f in functions]
    http_functions = HttpFunctions(http_routes(served), links, str(tmp_path), "api/v1", run)
    server = TestServer(build_web_app(DurableApi(engine, links, lambda: []), http_functions), port=0)
    await engine.start()
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
        await engine.stop()


async def test_multi_segment_prefix_literal_precedence_and_unsendable_return(base_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/api/v1/items/42") as answer:
            assert (answer.status, await answer.text()) == (200, "item 42")
        async with session.get(f"{base_url}/API/V1/items/latest") as answer:
            assert (answer.status, await answer.text()) == (200, "latest")
        async with session.get(f"{base_url}/api/items/42") as answer:
            assert answer.status == 404
        async with session.post(f"{base_url}/api/v1/items/42") as answer:
            assert answer.status == 405
        async with session.get(f"{base_url}/api/v1/nothing") as answer:
            assert answer.status == 500 and await answer.read() == b""
        async with session.get(f"{base_url}/admin/host/status") as answer:
            assert await answer.json() == {"state": "Running"}
