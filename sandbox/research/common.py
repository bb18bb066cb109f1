"""Plumbing shared by the research stand-ins: parameters, broken bodies, hanging, entity escaping."""

from __future__ import annotations

import asyncio
import json
import zlib
from typing import Any

from aiohttp import web

from sandbox.behaviour import Behaviour

BEHAVIOUR = web.AppKey("sandbox_behaviour", Behaviour)


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """The integer query parameter clamped into [low, high]; unparsable values give the default."""
    try:
        value = int(request.query.get(name, default))
    except ValueError:
        return default
    return max(low, min(high, value))


def entity_escape(text: str) -> str:
    """Escape like Stack Exchange and YouTube do in titles: &amp; &quot; &#39; &lt; &gt;."""
    return (
        text.replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def stable_id(text: str, modulo: int = 1_000_000_000) -> int:
    """A number derived from `text`, the same in every process (unlike hash())."""
    return zlib.crc32(text.encode("utf-8")) % modulo


def json_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def truncated(body: bytes) -> bytes:
    """A JSON body cut mid-way, as a dropped connection behind a proxy would leave it."""
    return body[: max(1, len(body) // 2)]


async def hang(request: web.Request, behaviour: Behaviour) -> web.Response:
    """Never answer: wait until the client gives up or the sandbox stops (then a 504 nobody reads)."""
    stopped = asyncio.ensure_future(behaviour.hang())
    try:
        while not stopped.done() and request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(0.05)
    finally:
        stopped.cancel()
    return web.Response(status=504)
