"""The real stack for benchmarks: embedded PostgreSQL, `python -m sandbox`, `python -m devhost start`.

Self-contained on purpose (benchmarks must not depend on test fixtures): everything lives in one
temporary folder and is stopped in reverse order by `close()`. The devhost runs a *copy* of the app
(function_app.py, host.json and the code packages) so a benchmark can set host.json concurrency
without touching the repository's host.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from demo.stack import (  # noqa: E402 - the repository must be importable first
    EMULATOR_CONNECTION,
    QUEUE,
    DevhostProcess,
    EmbeddedPostgres,
    SandboxProcess,
    StackError,
    ensure_database,
    free_port,
    start_devhost,
    start_postgres,
    start_sandbox,
    wait_for,
)

__all__ = ["AI", "RESEARCH", "Stack", "StackConfig", "StackError", "code_version", "free_port", "wait_for"]

APP_PACKAGES = ("activities", "clients", "domain", "orchestrations", "starters")
RESEARCH = ("github", "stackoverflow", "youtube", "devto", "docs")
AI = ("deepseek", "groq", "gemini")


def code_version() -> str:
    """The commit the benchmark ran on, with `+dirty` when app folders had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--",
                *APP_PACKAGES,
                "function_app.py",
                "host.json",
                "devhost",
                "sandbox",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def http_json(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """Only what Python needs plus `extra`: no setting leaks in from the shell."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    return {**env, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **extra}


def copy_app(target: Path, durable_task: Mapping[str, Any]) -> Path:
    """The repository's app in `target`, with `durable_task` merged into host.json's durableTask."""
    target.mkdir(parents=True)
    shutil.copy2(REPO / "function_app.py", target / "function_app.py")
    for package in APP_PACKAGES:
        shutil.copytree(REPO / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    host = json.loads((REPO / "host.json").read_text(encoding="utf-8"))
    host.setdefault("extensions", {}).setdefault("durableTask", {}).update(durable_task)
    (target / "host.json").write_text(json.dumps(host, indent=2), encoding="utf-8")
    return target


@dataclass
class StackConfig:
    latency: Sequence[str]  # SOURCE=MIN-MAX specs for the sandbox
    seed: int = 1
    durable_task: Mapping[str, Any] = field(default_factory=dict)  # host.json durableTask overrides
    app_settings: Mapping[str, str] = field(default_factory=dict)  # extra app settings
    start_host: bool = True


@dataclass
class Stack:
    """Start with `Stack.start(config)`; always `close()`."""

    root: Path
    database_url: str = ""
    app_env: dict[str, str] = field(default_factory=dict)
    sandbox_url: str = ""
    host_url: str = ""
    host_json: dict[str, Any] = field(default_factory=dict)
    host_log: Path = field(default_factory=Path)  # the devhost's stderr (its `Executed ...` lines)
    _postgres: EmbeddedPostgres | None = None
    _sandbox: SandboxProcess | None = None
    _host: DevhostProcess | None = None

    @classmethod
    def start(cls, config: StackConfig) -> Stack:
        stack = cls(Path(tempfile.mkdtemp(prefix="lesson-bench-")))
        try:
            stack._start(config)
        except BaseException:
            stack.close()
            raise
        return stack

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def _start(self, config: StackConfig) -> None:
        self._postgres = start_postgres(self.root / "pg")
        self.database_url = ensure_database(self._postgres.server_dsn, "bench")
        from clients.db import migrate

        asyncio.run(migrate(self.database_url))
        self._sandbox = start_sandbox(
            self.root / "logs", latency=config.latency, seed=config.seed, env=child_env({}), name="sandbox"
        )
        self.sandbox_url = self._sandbox.base_url
        self.app_env = {
            **self._sandbox.env,
            "DATABASE_URL": self.database_url,
            "AzureServiceBusConnectionString": EMULATOR_CONNECTION,
            "GENERATION_DEADLINE_MINUTES": "30",
            **config.app_settings,
        }
        if config.start_host:
            app_dir = copy_app(self.root / "app", config.durable_task)
            self.host_json = json.loads((app_dir / "host.json").read_text(encoding="utf-8"))
            logs, env = self.root / "logs", child_env(self.app_env)
            self._host = start_devhost(self.state_dir, logs, app_dir=app_dir, env=env, name="devhost")
            self.host_url = self._host.base_url
            self.host_log = self._host.stderr_path

    # -- driving it --------------------------------------------------------------------------------

    def sql(self, query: str, *args: Any) -> list[Any]:
        async def run() -> list[Any]:
            import asyncpg

            conn = await asyncpg.connect(self.database_url)
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        return asyncio.run(run())

    def create_module(self, title: str, description: str = "", difficulty: str = "beginner") -> str:
        module_id = str(uuid.uuid4())
        self.sql(
            "INSERT INTO lessons_module (id, title, description, difficulty) VALUES ($1, $2, $3, $4)",
            uuid.UUID(module_id),
            title,
            description,
            difficulty,
        )
        return module_id

    def enqueue(self, module_id: str) -> float:
        """Put a generation message on the devhost's local queue (what `devhost enqueue` does);
        returns the enqueue time the queue recorded (epoch seconds)."""
        from devhost.queues import NewMessage, QueueStore

        body = json.dumps({"module_id": module_id, "request_id": uuid.uuid4().hex}).encode()
        return QueueStore(self.state_dir).enqueue(QUEUE, NewMessage(body=body)).enqueued_at

    def sandbox_requests(self) -> dict[str, int]:
        return dict(http_json("GET", f"{self.sandbox_url}/_sandbox/requests")["requests"])

    def reset_sandbox_counts(self) -> None:
        http_json("POST", f"{self.sandbox_url}/_sandbox/reset", {})

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        done = subprocess.run(
            [sys.executable, "-m", "devhost", "history", instance_id, "--state-dir", str(self.state_dir)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            env=child_env({}),
            check=True,
        )
        parsed = json.loads(done.stdout)
        return list(parsed["history"] if isinstance(parsed, dict) else parsed)

    def close(self) -> None:
        for part in (self._host, self._sandbox):
            if part is not None:
                part.stop()
        self._host = self._sandbox = None
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None
        shutil.rmtree(self.root, ignore_errors=True)
