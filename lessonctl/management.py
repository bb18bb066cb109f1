"""Where the durable management API is: --host-url, else the DURABLE_MANAGEMENT_URL setting."""

from __future__ import annotations

import argparse
import json
from typing import Any

from clients.durable_management import ManagementEndpoint
from lessonctl.context import CommandContext

SETTING = "DURABLE_MANAGEMENT_URL"


def add_host_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host-url",
        metavar="URL",
        help=f"the Functions host (devhost or func start: http://127.0.0.1:7071; Azure: "
        f"https://APP.azurewebsites.net?code=SYSTEM_KEY); default: the {SETTING} setting",
    )


class EndpointError(ValueError):
    pass


def endpoint_from(args: argparse.Namespace, ctx: CommandContext) -> ManagementEndpoint | None:
    """The configured endpoint, None when neither is set; EndpointError on a malformed value."""
    value = args.host_url or ctx.values().get(SETTING, "").strip()
    if not value:
        return None
    try:
        return ManagementEndpoint.parse(value)
    except ValueError as error:
        source = "--host-url" if args.host_url else SETTING
        raise EndpointError(f"{source} is invalid: {error}") from None


def run_id_of(instance: dict[str, Any]) -> str | None:
    """The run id in an instance's input (the Python client stores inputs as JSON text)."""
    value = instance.get("input")
    try:
        if isinstance(value, str):
            value = json.loads(value)
        return str(value["run_id"]) if isinstance(value, dict) else None
    except (ValueError, KeyError, TypeError):
        return None
