"""The whole stack for end-to-end tests: PostgreSQL (fixture), `python -m sandbox`, `python -m devhost start`
on this repository's function_app.py, driven only through HTTP, the devhost CLI and SQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from clients.db import migrate
from demo.stack import REPO, DevhostProcess, SandboxProcess, free_port, start_devhost, start_sandbox, wait_for

QUEUE = "lesson-generation"
__all__ = ["REPO", "Response", "Stack", "free_port", "http", "start_stack", "wait_until"]


def wait_until(check: Callable[[], T | None], *, timeout: float = 30.0, what: str = "condition") -> T:
    return wait_for(check, timeout=timeout, what=what)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, body: str | None = None, headers: dict[str, str] | None = None) -> Response:
    data = body.encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return Response(answer.status, dict(answer.headers.items()), answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers.items()), error.read())


def base_env() -> dict[str, str]:
    """Only what Python needs: no setting leaks in from the developer's shell."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env["PYTHONPATH"] = str(REPO)
    return env


T = TypeVar("T")


@dataclass
class Stack:
    host: DevhostProcess
    database_url: str
    env: dict[str, str]
    sandbox: SandboxProcess
    log_dir: Path

    # -- web app side ------------------------------------------------------------------------
    def create_module(self, title: str, description: str = "", difficulty: str = "beginner") -> str:
        module_id = str(uuid.uuid4())
        self.sql(
            "INSERT INTO lessons_module (id, title, description, difficulty) VALUES ($1, $2, $3, $4)",
            uuid.UUID(module_id), title, description, difficulty,
        )
        return module_id

    def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.database_url)
            try:
                return await conn.fetch(query, *args)
            finally:
                await conn.close()

        return asyncio.run(run())

    # -- queue and API -----------------------------------------------------------------------
    def enqueue(self, body: str | dict[str, Any], message_id: str | None = None) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        args = ["enqueue", QUEUE, "--body", text, "--state-dir", str(self.host.state_dir)]
        if message_id:
            args += ["--message-id", message_id]
        done = self.devhost(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def devhost(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devhost", *args],
            cwd=REPO, capture_output=True, text=True, timeout=60, env={**base_env(), **self.env},
        )

    def dead_letters(self) -> list[dict[str, Any]]:
        done = self.devhost("dead-letters", QUEUE, "--state-dir", str(self.host.state_dir))
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def api(self, method: str, module_id: str, body: Any = None) -> Response:
        data = None if body is None else json.dumps(body)
        return http(method, f"{self.host.base_url}/api/modules/{module_id}/generation", data,
                    {"Content-Type": "application/json"})

    def generation(self, module_id: str) -> dict[str, Any]:
        answer = self.api("GET", module_id)
        assert answer.status == 200, answer.body
        return answer.json()

    def wait_for_module(self, module_id: str, *statuses: str, timeout: float = 90) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            state = self.generation(module_id)
            return state if state["status"] in statuses else None

        return wait_until(check, timeout=timeout, what=f"module {module_id} to reach {statuses}; "
                          f"host log:\n{self.host.stderr()[-4000:]}")

    def lessons(self, module_id: str) -> list[asyncpg.Record]:
        return self.sql(
            "SELECT * FROM lessons_lessoncontent WHERE module_id = $1 ORDER BY lesson_number",
            uuid.UUID(module_id),
        )

    # -- sandbox control ---------------------------------------------------------------------
    @property
    def sandbox_url(self) -> str:
        return self.sandbox.base_url

    def sandbox_requests(self) -> dict[str, int]:
        return http("GET", f"{self.sandbox_url}/_sandbox/requests").json()["requests"]

    def fault(self, source: str, kind: str | None, rate: float = 1.0) -> None:
        body = json.dumps({"source": source, "kind": kind, "rate": rate})
        assert self._control("faults", body).status == 200

    def latency(self, source: str, min_ms: int, max_ms: int) -> None:
        body = json.dumps({"source": source, "min_ms": min_ms, "max_ms": max_ms})
        assert self._control("latency", body).status == 200

    def _control(self, what: str, body: str) -> Response:
        return http("POST", f"{self.sandbox_url}/_sandbox/{what}", body, {"Content-Type": "application/json"})

    def restart_host(self, *, kill: bool, extra_args: tuple[str, ...] = ()) -> None:
        """SIGKILL (or stop) the devhost and start a new one on the same state dir and port."""
        if kill:
            self.host.kill()
        else:
            self.host.stop()
        self.host = start_devhost(self.host.state_dir, self.log_dir, *extra_args,
                                  env={**base_env(), **self.env}, port=self.host.port)

    def wait_for_instance(self, instance_id: str, *statuses: str, timeout: float = 60.0) -> dict[str, Any]:
        """The durable status payload once the instance reaches one of `statuses`."""

        def check() -> dict[str, Any] | None:
            answer = http("GET", f"{self.host.webhook}/instances/{instance_id}")
            if answer.status in (200, 202) and answer.json()["runtimeStatus"] in statuses:
                return answer.json()
            return None

        return wait_until(check, timeout=timeout, what=f"{instance_id} to reach {statuses}")


def start_stack(database_url: str, root: Path, *sandbox_faults: str, extra_env: dict[str, str] | None = None
                ) -> Iterator[Stack]:
    asyncio.run(migrate(database_url))
    log_dir = root / "logs"
    sandbox = start_sandbox(log_dir, faults=sandbox_faults, env=base_env())
    env = {
        **sandbox.env,
        "DATABASE_URL": database_url,
        # The Service Bus emulator's connection string: the devhost serves its local queue instead.
        "AzureServiceBusConnectionString": (
            "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
        ),
        "GENERATION_DEADLINE_MINUTES": "5",
        **(extra_env or {}),
    }
    host = start_devhost(root / "state", log_dir, env={**base_env(), **env})
    try:
        yield Stack(host, database_url, env, sandbox, log_dir)
    finally:
        host.stop()
        sandbox.stop()
