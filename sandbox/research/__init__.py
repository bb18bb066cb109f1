"""Stand-ins for the research upstreams, each under its own path prefix of the one sandbox port."""

from __future__ import annotations

from aiohttp import web

from sandbox.behaviour import Behaviour
from sandbox.content import Library
from sandbox.research import devto, docs, github, stackexchange, youtube


def register(app: web.Application, behaviour: Behaviour, library: Library) -> None:
    for module in (github, stackexchange, youtube, devto, docs):
        module.register(app, behaviour, library)
