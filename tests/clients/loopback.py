"""Serve an aiohttp app on a free loopback port for the duration of a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) of `app` running on a real loopback socket."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # port 0 → ask the socket
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
