"""The host side of the devhost CLI: `start`, `enqueue`, `dead-letters`, `resubmit`.

`add_host_commands(subparsers)` plugs them into `python -m devhost`; this module also runs on its
own: `python -m devhost.hostcli start --app-dir my_app`.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from devhost.queues import NewMessage, QueueMessage, QueueStore, utc_iso

DEFAULT_PORT = 7071
DEFAULT_MAX_DELIVERY_COUNT = 10  # Service Bus default for a new queue
DEFAULT_LOCK_SECONDS = 60.0  # Service Bus default lock duration of a new queue
STATE_DIR_NAME = ".devhost"


def add_host_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    start = subparsers.add_parser(
        "start",
        help="run a function app locally (like `func start`)",
        description="Serve HTTP triggers under /api, the durable HTTP API and Service Bus queue triggers.",
    )
    start.add_argument("--app-dir", type=Path, default=Path("."), help="function app folder (default: .)")
    start.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})")
    start.add_argument(
        "--state-dir", type=Path, default=None, help="state folder (default: APP_DIR/.devhost)"
    )
    start.add_argument(
        "--max-delivery-count",
        type=_positive_int,
        default=DEFAULT_MAX_DELIVERY_COUNT,
        help=f"deliveries before a message is dead-lettered (default {DEFAULT_MAX_DELIVERY_COUNT})",
    )
    start.add_argument(
        "--lock-duration",
        type=_positive_float,
        default=DEFAULT_LOCK_SECONDS,
        metavar="SECONDS",
        help="peek-lock duration of the local queues in seconds (default 60); the host renews locks "
        "up to host.json maxAutoLockRenewalDuration",
    )
    start.set_defaults(handler=_run_start)

    enqueue = subparsers.add_parser("enqueue", help="put a message on a local Service Bus queue")
    enqueue.add_argument("queue")
    body = enqueue.add_mutually_exclusive_group(required=True)
    body.add_argument("--body", help="message body text (sent as UTF-8, not validated)")
    body.add_argument("--body-file", type=Path, help="file whose bytes are the message body")
    enqueue.add_argument("--message-id", help="message id (default: a new UUID)")
    enqueue.add_argument("--content-type", help="content type, e.g. application/json")
    enqueue.add_argument(
        "--property", action="append", default=[], metavar="K=V", help="application property (repeatable)"
    )
    _state_dir_option(enqueue)
    enqueue.set_defaults(handler=_run_enqueue)

    dead = subparsers.add_parser("dead-letters", help="list a queue's dead-lettered messages as JSON lines")
    dead.add_argument("queue")
    _state_dir_option(dead)
    dead.set_defaults(handler=_run_dead_letters)

    resubmit = subparsers.add_parser("resubmit", help="move dead-lettered messages back to their queue")
    resubmit.add_argument("queue")
    which = resubmit.add_mutually_exclusive_group(required=True)
    which.add_argument("--message-id", help="resubmit the dead letters with this message id")
    which.add_argument("--all", action="store_true", help="resubmit every dead letter of the queue")
    _state_dir_option(resubmit)
    resubmit.set_defaults(handler=_run_resubmit)


def _state_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"state folder of the host (default: ./{STATE_DIR_NAME}, i.e. run from the app folder)",
    )


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (1-65535)")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
    return value


# ---------------------------------------------------------------------------------------------- commands


def _run_start(args: argparse.Namespace) -> int:
    from devhost.host import HostOptions, run_host

    app_dir = Path(args.app_dir).resolve()
    state_dir = Path(args.state_dir).resolve() if args.state_dir else app_dir / STATE_DIR_NAME
    options = HostOptions(
        app_dir=app_dir,
        port=args.port,
        state_dir=state_dir,
        max_delivery_count=args.max_delivery_count,
        lock_seconds=args.lock_duration,
    )
    return run_host(options)


def _run_enqueue(args: argparse.Namespace) -> int:
    properties: dict[str, str] = {}
    for item in args.property:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"error: --property {item!r} must look like KEY=VALUE", file=sys.stderr)
            return 2
        properties[key] = value
    if args.body_file is not None:
        try:
            body = args.body_file.read_bytes()
        except OSError as exc:
            print(f"error: cannot read --body-file {args.body_file}: {exc.strerror}", file=sys.stderr)
            return 2
    else:
        body = str(args.body).encode("utf-8")
    state_dir = _sending_state_dir(args.state_dir)
    if state_dir is None:
        return 2
    try:
        store = QueueStore(state_dir)
        sent = store.enqueue(
            args.queue,
            NewMessage(
                body=body,
                message_id=args.message_id,
                content_type=args.content_type,
                properties=properties,
            ),
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(sent.message_id)
    return 0


def _sending_state_dir(given: Path | None) -> Path | None:
    """Where to enqueue. Without --state-dir only an app folder (or an existing ./.devhost) is used,
    so a message is never left in a state folder no host will ever read."""
    if given is not None:
        return given
    default = Path(STATE_DIR_NAME)
    if default.is_dir() or Path("host.json").is_file():
        return default
    print(
        f"error: {Path.cwd()} is not a function app folder and has no {STATE_DIR_NAME}; run from the "
        f"app folder or pass --state-dir (the host uses APP_DIR/{STATE_DIR_NAME} unless started with "
        f"--state-dir)",
        file=sys.stderr,
    )
    return None


def dead_letter_record(message: QueueMessage) -> dict[str, object]:
    """One dead letter as printed by `dead-letters` (text body, or base64 when not UTF-8)."""
    record: dict[str, object] = {"message_id": message.message_id}
    try:
        record["body"] = message.body.decode("utf-8")
    except UnicodeDecodeError:
        record["body_base64"] = base64.b64encode(message.body).decode("ascii")
    record.update(
        {
            "reason": message.dead_letter_reason,
            "error": message.dead_letter_error,
            "delivery_count": message.delivery_count,
            "enqueued_time_utc": utc_iso(message.enqueued_at),
            "dead_lettered_time_utc": utc_iso(message.dead_lettered_at) if message.dead_lettered_at else None,
            "content_type": message.content_type,
            "properties": message.properties,
            "sequence_number": message.sequence_number,
        }
    )
    return record


def _run_dead_letters(args: argparse.Namespace) -> int:
    for message in _open_existing(args.state_dir).dead_letters(args.queue):
        print(json.dumps(dead_letter_record(message), ensure_ascii=False))
    return 0


def _run_resubmit(args: argparse.Namespace) -> int:
    moved = _open_existing(args.state_dir).resubmit(args.queue, None if args.all else args.message_id)
    for message in moved:
        print(message.message_id)
    if not moved and not args.all:
        print(
            f"error: no dead letter with message id {args.message_id!r} in queue {args.queue!r}",
            file=sys.stderr,
        )
        return 1
    print(f"resubmitted {len(moved)} message(s) to {args.queue}", file=sys.stderr)
    return 0


def _open_existing(given: Path | None) -> QueueStore:
    # Reading never creates a state folder in the wrong place: say where we looked instead.
    state_dir = given if given is not None else Path(STATE_DIR_NAME)
    if not Path(state_dir).is_dir():
        raise SystemExit(f"error: no devhost state folder at {Path(state_dir).resolve()} (use --state-dir)")
    return QueueStore(state_dir)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.hostcli", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_host_commands(subparsers)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
