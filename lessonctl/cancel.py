"""`lessonctl cancel MODULE_ID`: end a module's queued or running generation.

The run is marked failed ("cancelled by operator") in PostgreSQL first: from then on the run fence
ignores its writes, so nothing it produces is stored. With --host-url or DURABLE_MANAGEMENT_URL the
orchestration is also terminated through the durable management API; without, it runs on to its end
(spending AI tokens) but cannot change the module.

Exit codes: 0 cancelled, 1 error (settings, database, or terminate failed after the run was marked),
2 unknown module, 3 nothing to cancel (not queued or in_progress).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from clients.db.operator import CANCELLED_BY_OPERATOR, CancelOutcome, CancelResult, cancel_generation
from clients.durable_management import ManagementError, TerminateOutcome, terminate_instance
from lessonctl.context import CommandContext
from lessonctl.dbcommand import with_database
from lessonctl.management import EndpointError, add_host_option, endpoint_from


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cancel",
        help="cancel a module's queued or running generation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("module_id", metavar="MODULE_ID")
    parser.add_argument("--reason", help=f"added to the stored error: '{CANCELLED_BY_OPERATOR}: REASON'")
    add_host_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    try:
        endpoint = endpoint_from(args, ctx)
    except EndpointError as error:
        ctx.warn(f"error: {error}")
        return 1
    reason = f"{CANCELLED_BY_OPERATOR}: {args.reason}" if args.reason else CANCELLED_BY_OPERATOR
    result = with_database(ctx, lambda pool: cancel_generation(pool, args.module_id, reason))
    if isinstance(result, int):
        return result
    outcome: CancelResult = result
    if outcome.outcome is CancelOutcome.UNKNOWN_MODULE:
        ctx.warn(f"error: module {args.module_id} does not exist in lessons_module")
        return 2
    if outcome.outcome is CancelOutcome.NOT_ACTIVE:
        ctx.warn(f"module {args.module_id} is {outcome.status}: nothing to cancel")
        return 3
    assert outcome.run is not None
    instance_id = outcome.run.instance_id
    ctx.say(f"run {outcome.run.run_id} of module {args.module_id} marked failed: {reason}")
    if endpoint is None:
        ctx.say(f"orchestration {instance_id} not terminated (no --host-url or DURABLE_MANAGEMENT_URL): "
                "it runs to its end, but its writes for this run are ignored")
        return 0
    try:
        terminated = asyncio.run(terminate_instance(endpoint, instance_id, reason))
    except ManagementError as error:
        ctx.warn(f"error: the run is cancelled in the database, but terminating {instance_id} failed: "
                 f"{error}")
        return 1
    ctx.say({
        TerminateOutcome.ACCEPTED: f"orchestration {instance_id} terminated on {endpoint.display}",
        TerminateOutcome.ALREADY_ENDED: f"orchestration {instance_id} had already ended",
        TerminateOutcome.NOT_FOUND: f"the host at {endpoint.display} has no instance {instance_id}",
    }[terminated])
    return 0
