"""One aiohttp app on one loopback port: every upstream under its own path prefix, plus control routes.

Control routes (for tests and the demo), all JSON:
  GET  /_sandbox/requests   counts per upstream, faults served, current faults/latency
  POST /_sandbox/faults     {"source": "github", "kind": "429", "rate": 0.5}  (kind null clears)
  POST /_sandbox/latency    {"source": "groq", "min_ms": 100, "max_ms": 300}
  POST /_sandbox/reset      zero the counters
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox import research
from sandbox.behaviour import Behaviour, BehaviourError
from sandbox.content import Library
from sandbox.research.common import BEHAVIOUR

DEFAULT_PORT = 7080
HOST = "127.0.0.1"
# Dummy keys: the stand-ins accept any key; the real APIs would reject these.
SANDBOX_KEYS = {
    "GITHUB_TOKEN": "sandbox-github-token",
    "STACKEXCHANGE_KEY": "sandbox-stackexchange-key",
    "YOUTUBE_API_KEY": "sandbox-youtube-key",
}


def research_env(base_url: str) -> dict[str, str]:
    base = base_url.rstrip("/")
    return {
        "GITHUB_API_URL": f"{base}/github",
        "STACKEXCHANGE_API_URL": f"{base}/stackexchange/2.3",
        "YOUTUBE_API_URL": f"{base}/youtube/v3",
        "DEVTO_API_URL": f"{base}/devto/api",
        "DOCS_SEARCH_URL": f"{base}/mdn/api/v1/search",
        **SANDBOX_KEYS,
    }


def _ai_module() -> Any:
    try:
        from sandbox import ai
    except ImportError:  # the AI stand-ins live in their own module; research works without them
        return None
    return ai


def sandbox_env(base_url: str) -> dict[str, str]:
    """Every setting that points the app at a sandbox served at `base_url`."""
    env = research_env(base_url)
    ai = _ai_module()
    if ai is not None:
        env.update(ai.sandbox_ai_env(base_url))
    # OpenAI-compatible local servers ignore the key, but clients must send one.
    env.setdefault("OPENAI_API_KEY", "sandbox-openai-key")
    return env


def create_app(behaviour: Behaviour, *, library: Library | None = None) -> web.Application:
    app = web.Application()
    app[BEHAVIOUR] = behaviour
    research.register(app, behaviour, library or Library.load())
    ai = _ai_module()
    if ai is not None:
        ai.register(app, behaviour)
    app.router.add_get("/_sandbox/requests", _requests)
    app.router.add_post("/_sandbox/faults", _faults)
    app.router.add_post("/_sandbox/latency", _latency)
    app.router.add_post("/_sandbox/reset", _reset)

    async def release_hanging(app: web.Application) -> None:
        behaviour.stop()

    app.on_shutdown.append(release_hanging)
    return app


async def _read_object(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="body must be a JSON object") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


def _bad(exc: Exception) -> web.Response:
    return web.json_response({"error": str(exc)}, status=400)


async def _requests(request: web.Request) -> web.Response:
    return web.json_response(request.app[BEHAVIOUR].snapshot())


async def _faults(request: web.Request) -> web.Response:
    behaviour = request.app[BEHAVIOUR]
    data = await _read_object(request)
    try:
        behaviour.set_fault(str(data.get("source")), data.get("kind"), float(data.get("rate", 1.0)))
    except (BehaviourError, TypeError, ValueError) as exc:
        return _bad(exc)
    return web.json_response(behaviour.snapshot())


async def _latency(request: web.Request) -> web.Response:
    behaviour = request.app[BEHAVIOUR]
    data = await _read_object(request)
    try:
        behaviour.set_latency(
            str(data.get("source")), int(data["min_ms"]), int(data.get("max_ms", data["min_ms"]))
        )
    except (BehaviourError, KeyError, TypeError, ValueError) as exc:
        return _bad(exc if not isinstance(exc, KeyError) else ValueError("min_ms is required"))
    return web.json_response(behaviour.snapshot())


async def _reset(request: web.Request) -> web.Response:
    behaviour = request.app[BEHAVIOUR]
    behaviour.reset_counts()
    return web.json_response(behaviour.snapshot())


async def serve(
    behaviour: Behaviour,
    *,
    port: int = DEFAULT_PORT,
    host: str = HOST,
    ready: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until `stop` is set (or SIGTERM/SIGINT); calls `ready` with the ready line once listening."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    # Signal handlers exist only on Unix and in the main thread (tests serve from others); elsewhere
    # Ctrl-C ends asyncio.run instead.
    if sys.platform != "win32" and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(create_app(behaviour), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1] if site._server else port  # type: ignore[union-attr]
        ready(f"sandbox ready on http://{host}:{bound}")
        await stop.wait()
    finally:
        behaviour.stop()
        await runner.cleanup()
