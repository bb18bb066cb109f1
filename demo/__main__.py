"""`python -m demo` (what `make demo` runs) and `python -m demo run` (`make run`).

demo: start the local stack, seed two sample modules, enqueue them, show live progress, print the
lessons and where they are stored, stop everything. Exit 0 when every module completed.
run:  start the same stack, seed the samples, print URLs and settings, stay up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import asyncpg

from demo.local_stack import LocalStack, StackConfig
from demo.progress import make_display
from demo.report import format_lessons, load_lessons
from demo.samples import SAMPLE_MODULES, SampleModule, seed_modules
from demo.stack import QUEUE, REPO, StackError, python_env
from demo.watch import ModuleView, follow
from domain.pipeline import instance_id_for

DEFAULT_ROOT = REPO / ".devhost"
RUN_PORT = 7071  # what `func start` uses, so URLs in docs and tools match


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n\n")[1])
    parser.add_argument("command", nargs="?", choices=("demo", "run"), default="demo",
                        help="demo (default): generate the sample modules and stop; run: stay up")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help="devhost state, PostgreSQL data (ROOT/pg) and logs (default: ./.devhost)")
    parser.add_argument("--port", type=int, default=None,
                        help=f"devhost port (demo: a free port; run: {RUN_PORT})")
    parser.add_argument("--database-url", default=None,
                        help="use this PostgreSQL instead of the embedded one")
    parser.add_argument("--timeout", type=float, default=240, help="seconds the demo waits for its modules")
    parser.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    return parser


def say(line: str = "") -> None:
    print(line, flush=True)


def _stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the same orderly shutdown as Ctrl-C


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # A shell starts background jobs with SIGINT ignored; `kill -INT` must still stop the stack cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    port = args.port if args.port is not None else (RUN_PORT if args.command == "run" else None)
    stack = LocalStack(StackConfig(root=args.root.resolve(), port=port, database_url=args.database_url), say)
    started = time.monotonic()
    code = 1
    try:
        stack.start()
        seed_modules(stack.database_url)
        code = demo(stack, args) if args.command == "demo" else stay_up(stack)
    except StackError as error:
        say(f"error: {error}")
    except KeyboardInterrupt:
        say("\ninterrupted: stopping everything")
        code = 130
    finally:
        for problem in stack.close():
            say(f"warning: {problem}")
    if args.command == "demo":
        say(f"\ndemo finished in {time.monotonic() - started:.1f}s with exit code {code}")
    return code


def demo(stack: LocalStack, args: argparse.Namespace) -> int:
    assert stack.host is not None
    since = database_now(stack.database_url)
    say("\nEnqueuing the sample modules on the local 'lesson-generation' queue:")
    for module in SAMPLE_MODULES:
        message_id = enqueue(stack, module)
        say(f"  {module.title:<20} module {module.id}  message {message_id}")
    say("")
    display = make_display(args.plain)
    try:
        views = follow(
            stack.host.base_url, [(m.id, m.title) for m in SAMPLE_MODULES], since, display.show,
            timeout=args.timeout, alive=lambda: check_alive(stack),
        )
    finally:
        display.close()
    say("")
    for view in views:
        print_module(stack, view)
    print_next_steps(stack, views)
    failed = [v for v in views if v.status != "completed"]
    for view in failed:
        say(f"error: module {view.title} ({view.module_id}) failed: {view.error}")
    return 1 if failed else 0


def enqueue(stack: LocalStack, module: SampleModule) -> str:
    """Through `python -m devhost enqueue`, as an operator or another process would."""
    request_id = f"demo-{uuid.uuid4()}"  # a new request id: a rerun generates the module again
    body = {
        "module_id": module.id,
        "request_id": request_id,
        "title": module.title,
        "description": module.description,
        "difficulty": module.difficulty,
        "learning_style": module.learning_style,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    done = subprocess.run(
        [sys.executable, "-m", "devhost", "enqueue", QUEUE, "--body", json.dumps(body),
         "--message-id", request_id, "--content-type", "application/json",
         "--state-dir", str(stack.state_dir)],
        cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=60,
    )
    if done.returncode != 0:
        raise StackError(f"devhost enqueue failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def database_now(database_url: str) -> datetime:
    """The database's clock: completion times are written with now() there."""

    async def run() -> datetime:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval("SELECT now()")  # type: ignore[no-any-return]
        finally:
            await conn.close()

    return asyncio.run(run())


def check_alive(stack: LocalStack) -> None:
    """Raise as soon as the devhost or the sandbox died, naming its log."""
    for name, part in (("devhost", stack.host), ("sandbox", stack.sandbox)):
        if part is not None and part.process.poll() is not None:
            raise StackError(
                f"the {name} stopped with exit code {part.process.returncode} (log: {part.stderr_path})"
            )


def print_module(stack: LocalStack, view: ModuleView) -> None:
    lessons = load_lessons(stack.database_url, view.module_id)
    say(f"{view.title} — {view.status}, {len(lessons)} lessons (module {view.module_id})")
    for line in format_lessons(lessons):
        say(line)
    say("")


def print_next_steps(stack: LocalStack, views: list[ModuleView]) -> None:
    assert stack.host is not None
    root = _shown(stack.state_dir)
    first = views[0]
    say("Where to look next")
    say(f"  lessons      table lessons_lessoncontent in {stack.database_url}")
    restart = "make run" if stack.state_dir == DEFAULT_ROOT.resolve() else f"python -m demo run --root {root}"
    if stack.postgres is not None:
        say(f"               (data kept in {_shown(stack.postgres.data_dir)}; `{restart}` starts it again)")
    say(f"  status API   while `{restart}` is up:")
    say(f"               curl -s http://127.0.0.1:{RUN_PORT}/api/modules/{first.module_id}/generation")
    instance_id = first.instance_id or instance_id_for(first.module_id)
    say(f"  history      python -m devhost history {instance_id} --state-dir {root}")
    say(f"  replay       python -m devhost replay {instance_id} --state-dir {root}")
    say(f"  host log     {_shown(stack.host.stderr_path)}")
    say(f"  operator     while `{restart}` is up: . {root}/stack.env; "
        f"python -m lessonctl status {first.module_id}")
    say("               (and failed, usage, retry, cancel: see README.md)")


def stay_up(stack: LocalStack) -> int:
    assert stack.host is not None
    base = stack.host.base_url
    say("\nThe stack is up. Ctrl-C stops everything.")
    say("\nSample modules (not enqueued):")
    for module in SAMPLE_MODULES:
        say(f"  {module.title:<20} {module.id}")
    first = SAMPLE_MODULES[0].id
    say("\nURLs")
    say(f"  generation API   POST|GET {base}/api/modules/<module id>/generation")
    say(f"  durable API      {stack.host.webhook}/instances")
    say(f"  host status      {base}/admin/host/status")
    say(f"  sandbox          {stack.sandbox.base_url if stack.sandbox else '-'}")
    env_file = write_env_file(stack)
    say("\nSettings for lessonctl and your own tools, in another shell:")
    say(f"  . {_shown(env_file)}      # exports these (and the sandbox's URLs and keys):")
    say(f"  DATABASE_URL='{stack.database_url}'")
    say(f"  DURABLE_MANAGEMENT_URL='{base}'")
    say("\nTry")
    say(f"  curl -s -X POST {base}/api/modules/{first}/generation")
    say(f"  python -m lessonctl enqueue {first} --local --state-dir {_shown(stack.state_dir)}")
    say(f"  python -m lessonctl status {first} --watch")
    try:
        while True:
            check_alive(stack)
            time.sleep(0.5)
    finally:
        env_file.unlink(missing_ok=True)


def write_env_file(stack: LocalStack) -> Path:
    """ROOT/stack.env: `export` lines for a shell, so lessonctl (doctor, research, status, cancel) talks
    to this stack. The Service Bus setting is left out: `lessonctl enqueue --local` is the local path."""
    assert stack.host is not None
    settings = dict(stack.app_env)
    settings.pop("AzureServiceBusConnectionString", None)
    settings["DURABLE_MANAGEMENT_URL"] = stack.host.base_url
    path = stack.state_dir / "stack.env"
    lines = [f"export {name}={shlex.quote(value)}\n" for name, value in sorted(settings.items())]
    path.write_text("".join(lines))
    return path


def _shown(path: Path) -> str:
    """Paths relative to the repository when inside it: shorter to read and to paste."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
