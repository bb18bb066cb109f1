"""The `history` and `replay` commands of `python -m devhost`.

Exit codes (architecture §3): 0 replayed cleanly, 1 non-determinism found, 2 usage, load or
unknown-instance error.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from devhost import replay
from devhost.app import AppLoadError, load_app
from devhost.hostcli import STATE_DIR_NAME
from devhost.registry import FunctionRegistry
from devhost.store import DB_FILE_NAME, Store
from devhost.workers import install_fast_timestamp_parsing

EXIT_OK = 0
EXIT_NONDETERMINISTIC = 1
EXIT_ERROR = 2


class CommandError(Exception):
    """A usage, load or unknown-instance problem: printed as one `error:` line, exit 2."""


def add_replay_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    history = subparsers.add_parser(
        "history",
        help="print an instance's full history as JSON",
        description="Print the full recorded history of an orchestration instance as a JSON array of "
        "DTFx history events (EventType, EventId, TaskScheduledId, Timestamp, Name, Input, Result, ...).",
    )
    history.add_argument("instance_id", metavar="INSTANCE_ID")
    history.add_argument(
        "--state-dir",
        type=Path,
        default=Path(STATE_DIR_NAME),
        help=f"devhost state folder (default: ./{STATE_DIR_NAME})",
    )
    history.set_defaults(handler=run_history)

    replay_cmd = subparsers.add_parser(
        "replay",
        help="re-run the current orchestrator code over a recorded history and report non-determinism",
        description="Replay a full recorded history (the devhost's own, or Azure Storage History-table rows "
        "exported as JSON) against the orchestrator code in --app-dir. Exit 0 when deterministic, 1 at the "
        "first differing step, 2 for usage, load or unknown-instance errors.",
    )
    replay_cmd.add_argument(
        "instance_id",
        metavar="INSTANCE_ID",
        nargs="?",
        help="instance to replay from the devhost store (with --history: which instance's rows to use)",
    )
    replay_cmd.add_argument(
        "--history",
        type=Path,
        metavar="FILE",
        help="JSON file: a devhost history or rows exported from an Azure Storage <hub>History table",
    )
    replay_cmd.add_argument(
        "--app-dir", type=Path, default=Path("."), help="function app folder (default: .)"
    )
    replay_cmd.add_argument(
        "--state-dir", type=Path, default=None, help="devhost state folder (default: APP_DIR/.devhost)"
    )
    replay_cmd.set_defaults(handler=run_replay, usage_parser=replay_cmd)


def run_history(args: argparse.Namespace) -> int:
    try:
        events = stored_events(Path(args.state_dir), args.instance_id)
    except CommandError as exc:
        return _fail(str(exc))
    print(json.dumps(events, indent=2, ensure_ascii=False))
    return EXIT_OK


def run_replay(args: argparse.Namespace) -> int:
    if args.instance_id is None and args.history is None:
        args.usage_parser.error("give an INSTANCE_ID (from the devhost store) or --history FILE")
    app_dir = Path(args.app_dir)
    try:
        recorded = _recorded_history(args, app_dir)
        name = replay.orchestrator_name(recorded)
        loaded = load_app(app_dir)
        registry = FunctionRegistry.from_functions(loaded.functions)
        orchestrator = registry.find_orchestrator(name)
        if orchestrator is None:
            known = ", ".join(sorted(registry.orchestrators)) or "none"
            raise CommandError(
                f"the history was recorded by orchestrator {name!r}, which {loaded.app_dir} does not define "
                f"(its orchestrators: {known})"
            )
        # The engine parses the SDK's history timestamps the same fast way; replay must match it.
        install_fast_timestamp_parsing()
        report = replay.replay_history(recorded, orchestrator.handle)
    except (CommandError, AppLoadError, replay.HistoryFormatError, replay.ReplayError) as exc:
        return _fail(str(exc))
    print(report.summary())
    return EXIT_OK if report.deterministic else EXIT_NONDETERMINISTIC


def _recorded_history(args: argparse.Namespace, app_dir: Path) -> replay.RecordedHistory:
    if args.history is not None:
        if not args.history.is_file():
            raise CommandError(f"--history {args.history}: no such file")
        return replay.read_history_file(args.history, args.instance_id)
    state_dir = Path(args.state_dir) if args.state_dir is not None else app_dir / STATE_DIR_NAME
    events = stored_events(state_dir, args.instance_id)
    if not events:
        raise CommandError(f"instance {args.instance_id!r} has not run an episode yet: nothing to replay")
    return replay.history_from_events(events, source=f"instance {args.instance_id} in {state_dir}")


def stored_events(state_dir: Path, instance_id: str) -> list[dict[str, Any]]:
    """The full history the devhost recorded for `instance_id` (its current execution, oldest first)."""
    # Reading must not create an empty store where the user merely mistyped the folder.
    if not (state_dir / DB_FILE_NAME).is_file():
        raise CommandError(f"no devhost state at {state_dir.resolve()} (use --state-dir to point at it)")
    try:
        store = Store(state_dir)
    except (sqlite3.Error, RuntimeError) as exc:
        raise CommandError(f"cannot read the devhost state at {state_dir.resolve()}: {exc}") from exc
    try:
        if store.get_instance(instance_id) is None:
            raise CommandError(f"no instance {instance_id!r} in {state_dir.resolve()}")
        return [json.loads(text) for text in store.load_history(instance_id)]
    except sqlite3.Error as exc:
        raise CommandError(f"cannot read the devhost state at {state_dir.resolve()}: {exc}") from exc
    finally:
        store.close()


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR
