"""Structured log fields, and a logger for orchestrators that stays quiet while they replay.

Two audiences read our logs. In Azure the Functions host forwards a Python log record to Application
Insights as a trace with only its *message* (the record's attributes are dropped), so the fields are also
written into the message as ``key=value`` pairs that KQL can `parse`/`extract`. Exporters that do read record
attributes (OpenTelemetry, the devhost, pytest's caplog) get the same fields as `extra` attributes.

An orchestrator function runs again from the top on every episode (history replay); a plain
``logger.info`` in it is written once per replay, so one event shows up many times. `ReplaySafeLogger`
writes only when ``context.is_replaying`` is false, i.e. the first time the code path runs for real.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Protocol

FieldValue = str | int | float | bool | None

# Long values (error texts, titles) are cut so a log line stays one readable line.
MAX_VALUE_CHARS = 300

# Attributes every LogRecord already has: `extra` may not reuse them (logging raises KeyError).
_RESERVED = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
}
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
# Field names that suggest a credential: refused, because log lines leave the app (App Insights).
_SECRET_WORDS = ("secret", "password", "token", "api_key", "apikey", "connection_string", "dsn")


class LogFieldError(ValueError):
    """A field name that cannot be used (reserved by logging, malformed, or naming a secret)."""


def log_fields(**fields: FieldValue) -> dict[str, FieldValue]:
    """Validated `extra` for a log call; fields whose value is None are left out.

    >>> logger.info("run started %s", describe(f), extra=f)   # where f = log_fields(module_id=...)
    """
    result: dict[str, FieldValue] = {}
    for name, value in fields.items():
        _check_name(name)
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            kind = type(value).__name__
            raise LogFieldError(f"log field {name!r} must be str, int, float or bool, not {kind}")
        result[name] = _shorten(value) if isinstance(value, str) else value
    return result


def describe(fields: Mapping[str, FieldValue]) -> str:
    """``key=value`` pairs in the given order; values with spaces or quotes are JSON-style quoted."""
    return " ".join(f"{name}={_render(value)}" for name, value in fields.items() if value is not None)


def with_fields(message: str, fields: Mapping[str, FieldValue]) -> str:
    """The message followed by its fields, as the Functions host will show it."""
    rendered = describe(fields)
    return f"{message} | {rendered}" if rendered else message


class ReplayAware(Protocol):
    """The part of `DurableOrchestrationContext` the logger needs."""

    @property
    def is_replaying(self) -> bool: ...

    @property
    def instance_id(self) -> str: ...


class ReplaySafeLogger:
    """Logs from an orchestrator once per event, not once per replay; every line carries `instance_id`.

    Create it inside the orchestrator function (``log = ReplaySafeLogger(context, logger)``): it reads
    ``context.is_replaying`` at each call, which the SDK updates as the orchestrator advances through
    its history, so lines after the last recorded event are written and earlier ones are not.
    """

    def __init__(self, context: ReplayAware, logger: logging.Logger, **fields: FieldValue) -> None:
        self._context = context
        self._logger = logger
        self._fields = log_fields(instance_id=context.instance_id, **fields)

    def debug(self, message: str, **fields: FieldValue) -> None:
        self._emit(logging.DEBUG, message, fields)

    def info(self, message: str, **fields: FieldValue) -> None:
        self._emit(logging.INFO, message, fields)

    def warning(self, message: str, **fields: FieldValue) -> None:
        self._emit(logging.WARNING, message, fields)

    def error(self, message: str, **fields: FieldValue) -> None:
        self._emit(logging.ERROR, message, fields)

    def log(self, level: int, message: str, **fields: FieldValue) -> None:
        self._emit(level, message, fields)

    def _emit(self, level: int, message: str, fields: Mapping[str, FieldValue]) -> None:
        # Validate even while replaying, so a bad field fails on the first run, not only on a live one.
        merged = {**self._fields, **log_fields(**fields)}
        if self._context.is_replaying or not self._logger.isEnabledFor(level):
            return
        # "%s" keeps a "%" inside the message or a value from being taken as a format directive;
        # stacklevel 3 attributes the record to the orchestrator line that called info()/log().
        self._logger.log(level, "%s", with_fields(message, merged), extra=merged, stacklevel=3)


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise LogFieldError(f"log field {name!r} must be lower_snake_case (a-z, 0-9, _), at most 64 chars")
    if name in _RESERVED:
        raise LogFieldError(f"log field {name!r} is a LogRecord attribute; choose another name")
    words = set(name.split("_"))
    # Whole words: `github_token` is a credential, `tokens_in` (an AI token count) is not.
    if any(word in words if "_" not in word else word in name for word in _SECRET_WORDS):
        raise LogFieldError(f"log field {name!r} looks like a credential; secrets never go to logs")


def _shorten(value: str) -> str:
    value = " ".join(value.split())  # one line: newlines would split the trace in most viewers
    return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"


def _render(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text == "" or any(c in text for c in " \"'=|"):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return text
