"""`lessonctl status MODULE_ID [--watch]`: the module's generation status from PostgreSQL, with the
orchestration's progress (its custom status) when the host's management API is reachable.

With --request ID (the id `lessonctl enqueue` printed) the answer is about the run that request
started or joined: right after enqueuing, the module still shows its previous run until a starter
picks the message up, and --watch waits for that.

Exit codes: 0 completed, 1 failed, 2 unknown module, 3 not finished (queued, in_progress,
not_started, or the request not picked up yet; with --watch only when --timeout ran out),
4 status could not be read (settings, database).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from clients.db import DatabaseUnavailable, ModuleRecord, RunRecord, close_pools, get_module, get_pool
from clients.db.operator import run_for_request
from clients.durable_management import ManagementEndpoint, ManagementError, get_instance
from domain.settings import SettingsError
from lessonctl.context import CommandContext
from lessonctl.management import EndpointError, add_host_option, endpoint_from, run_id_of
from lessonctl.status_view import StatusDisplay, describe, make_display

EXIT = {"completed": 0, "failed": 1}
UNKNOWN_MODULE, NOT_FINISHED, UNREADABLE = 2, 3, 4


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="a module's generation status (and live progress with --watch)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("module_id", metavar="MODULE_ID")
    parser.add_argument("--watch", action="store_true", help="follow the run until completed or failed")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls with --watch")
    parser.add_argument("--timeout", type=float, default=None, help="with --watch: give up after this long")
    parser.add_argument("--request", metavar="ID", help="report on the run of this request id")
    add_host_option(parser)
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class StatusView:
    module: ModuleRecord
    progress: dict[str, Any] | None  # the orchestration's custom status, when it belongs to the current run
    progress_note: str | None  # why there is no progress, when there is none
    request_run: RunRecord | None = None  # with --request: the run that request belongs to

    def status(self, request_id: str | None) -> str:
        """The module's status, or with a request id the status of that request's run."""
        if request_id is None:
            return self.module.generation_status
        return self.request_run.status if self.request_run else "not picked up yet"


async def read_status(
    pool: asyncpg.Pool, endpoint: ManagementEndpoint | None, module_id: str
) -> StatusView | None:
    module = await get_module(pool, module_id)
    if module is None:
        return None
    run = module.current_run
    if run is None:
        return StatusView(module, None, "no generation was requested yet")
    if endpoint is None:
        return StatusView(module, None, "orchestration progress needs --host-url or DURABLE_MANAGEMENT_URL")
    try:
        instance = await get_instance(endpoint, run.run.instance_id)
    except ManagementError as error:
        return StatusView(module, None, f"orchestration progress unavailable: {error}")
    if instance is None:
        missing = f"the host at {endpoint.display} has no instance {run.run.instance_id}"
        return StatusView(module, None, missing)
    if run_id_of(instance) not in (None, run.run.run_id):
        return StatusView(module, None, "the host's instance belongs to an earlier run")
    custom = instance.get("customStatus")
    return StatusView(module, custom if isinstance(custom, dict) else None, None)


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    try:
        endpoint = endpoint_from(args, ctx)
        dsn = ctx.settings().database_url
    except EndpointError as error:
        ctx.warn(f"error: {error}")
        return UNREADABLE
    except SettingsError as error:
        ctx.settings_failed(error)
        return UNREADABLE
    assert dsn is not None
    try:
        return asyncio.run(_run(args, ctx, dsn, endpoint))
    except DatabaseUnavailable as error:
        ctx.warn(f"error: {error}")
    except asyncpg.UndefinedTableError as error:
        ctx.warn(f"error: {error}; run `python -m lessonctl migrate` first")
    except (asyncpg.PostgresError, OSError) as error:
        ctx.warn(f"error: database query failed: {type(error).__name__}: {error}")
    return UNREADABLE


async def _run(
    args: argparse.Namespace, ctx: CommandContext, dsn: str, endpoint: ManagementEndpoint | None
) -> int:
    try:
        pool = await get_pool(dsn)
        view = await _read(pool, endpoint, args)
        if view is None:
            ctx.warn(f"error: module {args.module_id} does not exist in lessons_module")
            return UNKNOWN_MODULE
        if args.watch and view.status(args.request) not in EXIT:
            view = await _watch(pool, endpoint, args, ctx, view)
        for line in describe(view.module, view.progress, view.progress_note):
            ctx.say(line)
        if args.request is not None:
            ctx.say(f"request    {args.request}: {view.status(args.request)}")
        return EXIT.get(view.status(args.request), NOT_FINISHED)
    finally:
        await close_pools()


async def _read(pool: asyncpg.Pool, endpoint: ManagementEndpoint | None, args: argparse.Namespace
                ) -> StatusView | None:
    view = await read_status(pool, endpoint, args.module_id)
    if view is None or args.request is None:
        return view
    return replace(view, request_run=await run_for_request(pool, args.module_id, args.request))


async def _watch(
    pool: asyncpg.Pool, endpoint: ManagementEndpoint | None, args: argparse.Namespace, ctx: CommandContext,
    view: StatusView,
) -> StatusView:
    display: StatusDisplay = make_display(ctx.out)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    try:
        while True:
            waiting = args.request is not None and view.request_run is None
            display.show(view.module, view.progress, waiting=waiting)
            if view.status(args.request) in EXIT or (deadline is not None and time.monotonic() > deadline):
                return view
            await asyncio.sleep(max(args.interval, 0.05))
            latest = await _read(pool, endpoint, args)
            if latest is None:  # deleted while watching
                return view
            view = latest
    finally:
        display.close()
