"""A scripted stand-in upstream on loopback: each path answers with queued replies, requests are recorded."""

from __future__ import annotations

import asyncio
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture(name))


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    gzip: bool = False  # compress and say so (Content-Encoding: gzip)
    gzip_without_header: bool = False  # compress, but the header was "stripped by a proxy"
    hang: bool = False  # never answer (the client's timeout must fire)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def fixture_reply(name: str, **kwargs: Any) -> Reply:
    return Reply(body=fixture(name), **kwargs)


@dataclass
class Recorded:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class ScriptedUpstream:
    """Replies are consumed in order per path; the last one repeats."""

    def __init__(self) -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.requests: list[Recorded] = []
        self.release = asyncio.Event()

    def on(self, path: str, *replies: Reply) -> None:
        self.replies[path] = list(replies)

    def count(self, prefix: str = "") -> int:
        return sum(1 for r in self.requests if r.path.startswith(prefix))

    def last(self, prefix: str) -> Recorded:
        return [r for r in self.requests if r.path.startswith(prefix)][-1]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Recorded(request.path, dict(request.query), dict(request.headers)))
        queue = self.replies.get(request.path)
        if not queue:
            return web.json_response({"message": f"no scripted reply for {request.path}"}, status=599)
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if reply.hang:
            await self.release.wait()
        body = reply.encoded()
        headers = dict(reply.headers)
        if reply.gzip or reply.gzip_without_header:
            body = gzip.compress(body)
            if reply.gzip:
                headers["Content-Encoding"] = "gzip"
        headers.setdefault("Content-Type", reply.content_type)
        return web.Response(status=reply.status, body=body, headers=headers)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app
