"""The whole local stack for `make demo` / `make run`: PostgreSQL, migrations, sandbox, devhost.

Everything it starts is stopped by `close()`, in reverse order, whatever happened before.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from demo.stack import (
    EMULATOR_CONNECTION,
    REPO,
    DevhostProcess,
    EmbeddedPostgres,
    SandboxProcess,
    StackError,
    ensure_database,
    python_env,
    start_devhost,
    start_postgres,
    start_sandbox,
)

DATABASE = "lesson_orchestrator"
# Realistic upstream latencies (ms): slow enough to watch the fan-outs, fast enough for a short demo.
DEMO_LATENCY = (
    *(f"{source}=300-1500" for source in ("github", "stackoverflow", "youtube", "devto", "docs")),
    *(f"{provider}=800-2000" for provider in ("deepseek", "groq", "gemini")),
)


@dataclass(frozen=True)
class StackConfig:
    root: Path  # .devhost: devhost state, PostgreSQL data in root/pg, logs in root/logs
    port: int | None = None  # devhost port; None picks a free one
    database_url: str | None = None  # an existing PostgreSQL instead of the embedded one
    latency: Sequence[str] = DEMO_LATENCY


@dataclass
class LocalStack:
    config: StackConfig
    say: Callable[[str], None]
    postgres: EmbeddedPostgres | None = None
    database_url: str = ""
    sandbox: SandboxProcess | None = None
    host: DevhostProcess | None = None
    app_env: dict[str, str] = field(default_factory=dict)  # the settings the devhost runs the app with

    @property
    def state_dir(self) -> Path:
        return self.config.root

    @property
    def log_dir(self) -> Path:
        return self.config.root / "logs"

    def start(self) -> None:
        root = self.config.root
        root.mkdir(parents=True, exist_ok=True)
        if self.config.database_url:
            self.database_url = self.config.database_url
            self.say("PostgreSQL   using DATABASE_URL given on the command line")
        else:
            fresh = not (root / "pg" / "PG_VERSION").exists()
            what = "initialising" if fresh else "starting"
            self.say(f"PostgreSQL   {what} the embedded server, data in {root / 'pg'}")
            self.postgres = start_postgres(root / "pg")
            self.database_url = ensure_database(self.postgres.server_dsn, DATABASE)
        self._migrate()
        self.sandbox = start_sandbox(self.log_dir, latency=self.config.latency, seed=None, name="sandbox")
        self.say(f"sandbox      {self.sandbox.base_url} (stand-ins for GitHub, Stack Overflow, YouTube, "
                 "Dev.to, MDN, DeepSeek, Groq, Gemini)")
        self.app_env = {
            **self.sandbox.env,
            "DATABASE_URL": self.database_url,
            "AzureServiceBusConnectionString": EMULATOR_CONNECTION,
            "GENERATION_DEADLINE_MINUTES": "10",
        }
        self.host = start_devhost(self.state_dir, self.log_dir, env=python_env(self.app_env),
                                  port=self.config.port, name="devhost")
        self.say(f"devhost      {self.host.base_url} (state in {self.state_dir}, "
                 f"log {self.host.stderr_path})")

    def _migrate(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "lessonctl", "migrate"],
            cwd=REPO, env=python_env({"DATABASE_URL": self.database_url}),
            capture_output=True, text=True, timeout=120,
        )
        if done.returncode != 0:
            raise StackError(f"lessonctl migrate failed ({done.returncode}):\n{done.stderr.strip()}")
        summary = done.stdout.strip().splitlines()
        self.say(f"migrations   lessonctl migrate: {summary[-1] if summary else 'done'}")

    def close(self) -> list[str]:
        """Stop what was started, devhost first (it drains its work), PostgreSQL last; returns problems."""
        problems: list[str] = []
        if self.host is not None:
            code = self.host.stop()
            if code != 0:
                problems.append(f"the devhost exited with code {code} (log: {self.host.stderr_path})")
            self.host = None
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None
        return problems
