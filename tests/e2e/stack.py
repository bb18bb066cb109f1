"""The whole stack for end-to-end tests: PostgreSQL (fixture), `python -m sandbox`, `python -m devhost start`
on this repository's function_app.py, driven only through HTTP, the devhost CLI and SQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from clients.db import migrate
from tests.devhost.test_host_e2e import Response, RunningHost, http, start_host, wait_until
from tests.lessonctl.conftest import base_env, start_sandbox, stop_sandbox

REPO = Path(__file__).resolve().parents[2]
QUEUE = "lesson-generation"


@dataclass
class Stack:
    host: RunningHost
    database_url: str
    env: dict[str, str]
    sandbox: subprocess.Popen[str]

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
        return self.env["GITHUB_API_URL"].rsplit("/", 1)[0]

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
        root = self.host.state_dir.parent
        self.host = start_host(REPO, self.host.state_dir, root / "logs", *extra_args,
                               env={**base_env(), **self.env}, port=self.host.port)


def start_stack(database_url: str, root: Path, *sandbox_faults: str, extra_env: dict[str, str] | None = None
                ) -> Iterator[Stack]:
    asyncio.run(migrate(database_url))
    sandbox, sandbox_env = start_sandbox(*sandbox_faults)
    env = {
        **sandbox_env,
        "DATABASE_URL": database_url,
        # The Service Bus emulator's connection string: the devhost serves its local queue instead.
        "AzureServiceBusConnectionString": (
            "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
        ),
        "GENERATION_DEADLINE_MINUTES": "5",
        **(extra_env or {}),
    }
    host = start_host(REPO, root / "state", root / "logs", env={**base_env(), **env})
    try:
        yield Stack(host, database_url, env, sandbox)
    finally:
        host.stop()
        stop_sandbox(sandbox)
