"""Shared checks for upstream payloads: required fields, and turning raw records into items."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from clients.http import UpstreamProtocolError
from domain.research import InvalidResearchItem, ResearchItem

log = logging.getLogger(__name__)


def require_list(source: str, data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        found = "missing" if value is None else type(value).__name__
        said = _upstream_message(data)
        hint = f" (the upstream said: {said})" if said else ""
        raise UpstreamProtocolError(source, f"response field {key!r} is {found}, expected a list{hint}")
    return value


def _upstream_message(data: Mapping[str, Any]) -> str:
    """The error text a 200 response may carry instead of data (GitHub `message`, `error`, ...)."""
    for key in ("message", "error_message", "error", "errors", "detail"):
        value = data.get(key)
        if value:
            text = value.get("message", value) if isinstance(value, dict) else value
            return str(text)[:200]
    return ""


def collect_items(
    source: str, records: list[Any], build: Callable[[dict[str, Any]], ResearchItem]
) -> list[ResearchItem]:
    """Build items, skipping unusable records; a response where every record is unusable is an error."""
    items: list[ResearchItem] = []
    problems: list[str] = []
    for record in records:
        if not isinstance(record, dict):
            problems.append(f"record is {type(record).__name__}, not an object")
            continue
        try:
            items.append(build(record))
        except (InvalidResearchItem, TypeError, ValueError, AttributeError) as exc:
            problems.append(str(exc) or type(exc).__name__)
    if problems:
        log.info("%s: skipped %d of %d records (first: %s)", source, len(problems), len(records), problems[0])
    if records and not items:
        raise UpstreamProtocolError(
            source, f"none of the {len(records)} records is usable (first problem: {problems[0]})"
        )
    return items
