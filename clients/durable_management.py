"""The Durable Functions management HTTP API (`/runtime/webhooks/durabletask/instances/...`), as served
by the Functions host in Azure and by the devhost locally: read an instance, terminate it.

The endpoint is the host's base URL; a query string on it (in Azure: `?code=<durabletask_extension
system key>`) is sent with every call and treated as a secret in errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from clients.http import redact, register_secret

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
TIMEOUT_S = 15.0


class ManagementError(RuntimeError):
    """The host could not be reached or answered something unexpected."""


@dataclass(frozen=True)
class ManagementEndpoint:
    base_url: str  # scheme://host[:port][/prefix], no trailing slash
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, value: str) -> ManagementEndpoint:
        """`http://127.0.0.1:7071` or `https://APP.azurewebsites.net?code=KEY`; a value that already ends
        in /runtime/webhooks/durabletask is accepted too. Raises ValueError on anything else."""
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http(s) URL of the Functions host, e.g. http://127.0.0.1:7071")
        path = parts.path.rstrip("/")
        path = path.removesuffix(WEBHOOK_PATH)
        params = tuple(parse_qsl(parts.query))
        for _name, secret in params:
            register_secret(secret)
        return cls(urlunsplit((parts.scheme, parts.netloc, path, "", "")), params)

    def url(self, path: str, **query: str) -> str:
        return f"{self.base_url}{WEBHOOK_PATH}{path}?{urlencode([*self.params, *query.items()])}".rstrip("?")

    @property
    def display(self) -> str:
        """The base URL without the query (never the key)."""
        return self.base_url


class TerminateOutcome(Enum):
    ACCEPTED = "accepted"  # 202: the host will terminate it
    ALREADY_ENDED = "already_ended"  # 410: completed, failed or terminated before
    NOT_FOUND = "not_found"  # 404: no such instance in this task hub


async def _call(method: str, url: str) -> tuple[int, bytes]:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as session,
            session.request(method, url) as answer,
        ):
            return answer.status, await answer.read()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        where = redact(url.split("?", 1)[0])
        raise ManagementError(f"{method} {where} failed: {type(exc).__name__}: {redact(str(exc))}") from None


async def get_instance(endpoint: ManagementEndpoint, instance_id: str) -> dict[str, Any] | None:
    """The instance's status object (runtimeStatus, input, customStatus, ...), or None if unknown."""
    url = endpoint.url(f"/instances/{instance_id}", showInput="true")
    status, body = await _call("GET", url)
    if status == 404:
        return None
    if status not in (200, 202):
        raise ManagementError(f"status of {instance_id}: HTTP {status}: {_excerpt(body)}")
    try:
        payload = json.loads(body)
    except ValueError:
        raise ManagementError(f"status of {instance_id}: the host answered non-JSON") from None
    if not isinstance(payload, dict):
        raise ManagementError(f"status of {instance_id}: unexpected answer {type(payload).__name__}")
    return payload


async def terminate_instance(endpoint: ManagementEndpoint, instance_id: str, reason: str) -> TerminateOutcome:
    status, body = await _call("POST", endpoint.url(f"/instances/{instance_id}/terminate", reason=reason))
    if status == 202:
        return TerminateOutcome.ACCEPTED
    if status == 410:
        return TerminateOutcome.ALREADY_ENDED
    if status == 404:
        return TerminateOutcome.NOT_FOUND
    raise ManagementError(f"terminate {instance_id}: HTTP {status}: {_excerpt(body)}")


def _excerpt(body: bytes) -> str:
    return redact(body[:300].decode(errors="replace"))
