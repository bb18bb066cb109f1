"""Run `python -m devhost start` as a child process: for end-to-end tests, demos and benchmarks.

Readiness is observed (the ready line on stdout), never assumed after a sleep; the child's output
goes to files so a failing test can show the host's log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

# The folder that holds the devhost package: children must be able to import it.
DEVHOST_ROOT = Path(__file__).resolve().parents[1]
HOST_READY = "devhost ready on "

T = TypeVar("T")


class ProcessError(RuntimeError):
    """A child process did not start or stopped early; the message says which and why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; ProcessError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise ProcessError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def stop_process(process: subprocess.Popen[Any], timeout: float) -> int:
    """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(timeout=timeout)


def spawn_python(
    args: Sequence[str],
    stdout: Path,
    stderr: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """`python ARGS` with output to files, in a session of its own (Ctrl-C reaches only the parent,
    which stops its children in order)."""
    stdout.parent.mkdir(parents=True, exist_ok=True)
    environment = dict(os.environ if env is None else env)
    paths = [str(DEVHOST_ROOT), *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep))]
    environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd or DEVHOST_ROOT,
            stdout=out,
            stderr=err,
            env=environment,
            start_new_session=True,
        )


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

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if HOST_READY in self.stdout():
                return True
            if self.process.poll() is not None:
                raise ProcessError(
                    f"the devhost exited with code {self.process.returncode}:\n"
                    f"{self.stdout()}\n{tail(self.stderr_path, 2000).strip()}"
                )
            return False

        wait_for(ready, timeout=timeout, what=f"the devhost's ready line (log: {self.stderr_path})")

    def stop(self) -> int:
        # The devhost gives in-flight work up to 10 s, then releases queue messages: wait a bit longer.
        return stop_process(self.process, timeout=30)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


def launch_devhost(
    app_dir: Path,
    state_dir: Path,
    log_dir: Path,
    *extra: str,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    name: str | None = None,
) -> DevhostProcess:
    """`python -m devhost start` on `app_dir`, without waiting (see `DevhostProcess.wait_ready`).

    Logs go to LOG_DIR/NAME.out|err (NAME defaults to `devhost-` and 8 random hex digits)."""
    port = port or free_port()
    name = name or f"devhost-{uuid.uuid4().hex[:8]}"
    out, err = log_dir / f"{name}.out", log_dir / f"{name}.err"
    args = ["-m", "devhost", "start", "--app-dir", str(app_dir), "--port", str(port)]
    args += ["--state-dir", str(state_dir), *extra]
    return DevhostProcess(spawn_python(args, out, err, env), port, state_dir, out, err)


def start_devhost(
    app_dir: Path,
    state_dir: Path,
    log_dir: Path,
    *extra: str,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    name: str | None = None,
    timeout: float = 60,
) -> DevhostProcess:
    """`launch_devhost`, returning once the host printed its ready line (stopped again if it did not)."""
    host = launch_devhost(app_dir, state_dir, log_dir, *extra, env=env, port=port, name=name)
    try:
        host.wait_ready(timeout)
    except BaseException:
        stop_process(host.process, timeout=30)
        raise
    return host
