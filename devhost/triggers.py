"""Invoke HTTP- and Service Bus-triggered functions with the payloads the Python worker builds.

The worker turns the host's trigger data into `func.HttpRequest` / `func.ServiceBusMessage`
through the converters of `azure.functions`; the Service Bus message is built here through the
same converter (`ServiceBusMessageInConverter`) from the same trigger-metadata names, so user
code sees what it would see in Azure. A `durableClient` parameter receives the binding JSON of
durable-protocol.md §6.1, which the SDK's decorator turns into a `DurableOrchestrationClient`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import os
import re
import sysconfig
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import azure.functions as func
from azure.functions import _abc as functions_abc
from azure.functions import meta
from azure.functions.servicebus import ServiceBusMessageInConverter

from devhost.queues import DEFAULT_TIME_TO_LIVE_SECONDS, QueueMessage, utc_iso

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
RPC_PATH = "/durabletask/"
DEFAULT_CONNECTION_NAME = "Storage"


# ---------------------------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class TriggeredFunction:
    """One indexed function with its bindings as the function.json dicts."""

    name: str
    function: func.Function
    trigger: dict[str, Any]
    bindings: tuple[dict[str, Any], ...]

    @classmethod
    def from_function(cls, function: func.Function) -> TriggeredFunction:
        bindings: tuple[dict[str, Any], ...] = tuple(json.loads(function.get_function_json())["bindings"])
        triggers = [b for b in bindings if str(b.get("type", "")).endswith("Trigger")]
        trigger: dict[str, Any] = triggers[0] if triggers else {}
        return cls(str(function.get_function_name()), function, trigger, bindings)

    @property
    def trigger_type(self) -> str:
        return str(self.trigger.get("type", ""))

    def binding_of_type(self, binding_type: str) -> dict[str, Any] | None:
        return next((b for b in self.bindings if b.get("type") == binding_type), None)


@dataclass(frozen=True)
class ClientLinks:
    """Where this host serves the durable HTTP API; used to build the durableClient binding."""

    base_url: str  # e.g. http://127.0.0.1:7071
    hub_name: str
    connection_name: str = DEFAULT_CONNECTION_NAME

    @property
    def webhook_url(self) -> str:
        return self.base_url + WEBHOOK_PATH

    @property
    def query(self) -> str:
        return f"taskHub={quote(self.hub_name)}&connection={quote(self.connection_name)}"

    def binding_json(self) -> str:
        """The `durableClient` binding value (durable-protocol.md §6.1) pointing at this host."""
        instances = f"{self.webhook_url}/instances/INSTANCEID"
        creation = f"{self.webhook_url}/orchestrators/{{functionName}}[/{{instanceId}}]"
        query = self.query
        payload = {
            "taskHubName": self.hub_name,
            "connectionName": None,
            "creationUrls": {
                "createNewInstancePostUri": creation,
                "createAndWaitOnNewInstancePostUri": (
                    creation + "?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}"
                ),
            },
            "managementUrls": {
                "id": "INSTANCEID",
                "statusQueryGetUri": f"{instances}?{query}",
                "sendEventPostUri": f"{instances}/raiseEvent/{{eventName}}?{query}",
                "terminatePostUri": f"{instances}/terminate?reason={{text}}&{query}",
                "rewindPostUri": f"{instances}/rewind?reason={{text}}&{query}",
                "purgeHistoryDeleteUri": f"{instances}?{query}",
                "restartPostUri": f"{instances}/restart?{query}",
                "suspendPostUri": f"{instances}/suspend?reason={{text}}&{query}",
                "resumePostUri": f"{instances}/resume?reason={{text}}&{query}",
            },
            "baseUrl": self.webhook_url,
            # Core Tools runs without keys locally, so there is no `code=` to carry.
            "requiredQueryStringParameters": "",
            "rpcBaseUrl": self.base_url + RPC_PATH,
            "httpBaseUrl": None,
        }
        return json.dumps(payload)

    def check_status_links(self, request_origin: str, instance_id: str) -> dict[str, str]:
        """The check-status payload of durable-protocol.md §7.3 for one instance."""
        base = f"{request_origin}{WEBHOOK_PATH}/instances/{quote(instance_id, safe='')}"
        query = self.query
        return {
            "id": instance_id,
            "statusQueryGetUri": f"{base}?{query}",
            "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}?{query}",
            "terminatePostUri": f"{base}/terminate?reason={{text}}&{query}",
            "purgeHistoryDeleteUri": f"{base}?{query}",
            "restartPostUri": f"{base}/restart?{query}",
            "suspendPostUri": f"{base}/suspend?reason={{text}}&{query}",
            "resumePostUri": f"{base}/resume?reason={{text}}&{query}",
        }


# ---------------------------------------------------------------------------------------------- context


class _TraceContext(functions_abc.TraceContext):
    def __init__(self, trace_parent: str) -> None:
        self._trace_parent = trace_parent

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._trace_parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(functions_abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    """The `context` argument the worker passes to functions that declare one."""

    def __init__(self, function_name: str, function_directory: str, invocation_id: str) -> None:
        self._function_name = function_name
        self._function_directory = function_directory
        self._invocation_id = invocation_id
        self._thread_local = threading.local()
        self._trace = _TraceContext(f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01")

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> functions_abc.TraceContext:
        return self._trace

    @property
    def retry_context(self) -> functions_abc.RetryContext:
        return _RetryContext()


class _OutValue(func.Out):  # type: ignore[type-arg]
    """`func.Out[T]` for an output binding: the value is collected and sent after success."""

    def __init__(self) -> None:
        self.value: Any = None
        self.was_set = False

    def set(self, val: Any) -> None:
        self.value = val
        self.was_set = True

    def get(self) -> Any:
        return self.value


# ---------------------------------------------------------------------------------------------- invoking


class UnsupportedBinding(Exception):
    """The function uses a binding the devhost cannot provide."""


@dataclass
class Invocation:
    """What to pass to one function call beyond the trigger argument, and what it produced."""

    function: TriggeredFunction
    trigger_value: Any
    client_links: ClientLinks | None
    function_directory: str
    invocation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    service_bus_outputs: list[tuple[str, Any]] = field(default_factory=list)


ServiceBusSender = Callable[[str, Any], None]


async def invoke(invocation: Invocation, send_to_queue: ServiceBusSender | None = None) -> Any:
    """Call the user function like the worker: async on the loop, sync in a worker thread.

    Returns the `$return` value. Output bindings of type `serviceBus` are sent with
    `send_to_queue(queue_name, value)` after the function succeeded, as the host does.
    """
    fn = invocation.function
    kwargs: dict[str, Any] = {}
    outputs: list[tuple[str, _OutValue]] = []
    return_queue: str | None = None
    for binding in fn.bindings:
        name = str(binding.get("name"))
        kind = binding.get("type")
        direction = str(binding.get("direction", "IN")).upper()
        if binding is fn.trigger:
            kwargs[name] = invocation.trigger_value
        elif kind == "durableClient":
            if invocation.client_links is None:
                raise UnsupportedBinding(f"function {fn.name!r}: no durable client available")
            kwargs[name] = invocation.client_links.binding_json()
        elif kind == "serviceBus" and direction == "OUT":
            if name == "$return":
                return_queue = str(binding.get("queueName"))
            else:
                out = _OutValue()
                kwargs[name] = out
                outputs.append((str(binding.get("queueName")), out))
        elif kind == "http" and direction == "OUT":
            continue
        else:
            raise UnsupportedBinding(f"function {fn.name!r}: binding {kind!r} ({name}) is not served locally")
    user_function = fn.function.get_user_function()
    if _declares_context(user_function):
        kwargs["context"] = InvocationContext(
            fn.name, invocation.function_directory, invocation.invocation_id
        )
    if inspect.iscoroutinefunction(user_function):
        result = await user_function(**kwargs)
    else:
        call = functools.partial(user_function, **kwargs)
        result = await asyncio.get_running_loop().run_in_executor(function_threads(), call)
    has_return_binding = any(b.get("name") == "$return" for b in fn.bindings)
    if result is not None and not has_return_binding:
        # The worker refuses a value it has nowhere to send.
        raise RuntimeError(f"function {fn.name!r} without a $return binding returned a non-None value")
    if send_to_queue is not None:
        for queue_name, out in outputs:
            if out.was_set and out.value is not None:
                send_to_queue(queue_name, out.value)
        if return_queue is not None and result is not None:
            send_to_queue(return_queue, result)
    return result


_function_threads: ThreadPoolExecutor | None = None


def function_threads() -> ThreadPoolExecutor:
    """Threads for synchronous functions: the worker's default pool size, min(32, cores + 4)."""
    global _function_threads
    if _function_threads is None:
        workers = min(32, (os.cpu_count() or 1) + 4)
        _function_threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="devhost-function")
    return _function_threads


def release_function_threads() -> None:
    """Stop handing work to the function threads; a function still running is not waited for."""
    global _function_threads
    if _function_threads is not None:
        _function_threads.shutdown(wait=False, cancel_futures=True)
        _function_threads = None


def _declares_context(user_function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(user_function).parameters
    except (TypeError, ValueError):
        return False
    return "context" in parameters


def failure_text(exc: BaseException) -> str:
    """The worker's exception text: `TypeName: message`."""
    return f"{type(exc).__name__}: {exc}"


_HOST_DIRS = (str(Path(__file__).resolve().parent), sysconfig.get_paths()["stdlib"])


def format_traceback(exc: BaseException) -> str:
    """The traceback from the first frame of user code on (the host's own frames are noise to users)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename.startswith(_HOST_DIRS):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb, chain=False)).rstrip()


def elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


# ---------------------------------------------------------------------------------------------- HTTP


def build_http_request(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str] | list[tuple[str, str]],
    query: list[tuple[str, str]],
    route_params: Mapping[str, str],
    body: bytes,
) -> func.HttpRequest:
    """A `func.HttpRequest` as the worker builds it; repeated query keys/headers are joined like .NET."""
    header_items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    return func.HttpRequest(
        method=method.upper(),
        url=url,
        headers=_join(header_items, ", "),
        params=_join(query, ","),
        route_params=dict(route_params),
        body=body,
    )


def _join(items: list[tuple[str, str]], separator: str) -> dict[str, str]:
    joined: dict[str, str] = {}
    for key, value in items:
        lowered = key.lower()
        existing = next((k for k in joined if k.lower() == lowered), None)
        if existing is None:
            joined[key] = value
        else:
            joined[existing] = joined[existing] + separator + value
    return joined


@dataclass(frozen=True)
class HttpResult:
    """What goes back on the wire for an HTTP-triggered function's return value."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_result(value: Any) -> HttpResult:
    """Convert a function's return value the way `HttpResponseConverter.encode` + the host do."""
    if isinstance(value, func.HttpResponse):
        headers = [(k, v) for k, v in value.headers.items()]
        if not any(k.lower() == "content-type" for k, _ in headers):
            mimetype = value.mimetype
            text = mimetype.startswith("text/")
            content_type = f"{mimetype}; charset={value.charset}" if text else mimetype
            headers.append(("Content-Type", content_type))
        body = value.get_body() or b""
        return HttpResult(int(value.status_code), headers, body)
    if isinstance(value, str):
        return HttpResult(200, [("Content-Type", "text/plain; charset=utf-8")], value.encode("utf-8"))
    # The worker's HttpResponseConverter encodes nothing else (None included): the invocation fails.
    raise TypeError(
        f'unable to encode outgoing TypedData: unsupported type "HttpResponseConverter" for Python type '
        f'"{type(value).__name__}" (an HTTP function must return func.HttpResponse or str)'
    )


# ---------------------------------------------------------------------------------------------- routes

_CONSTRAINTS: dict[str, Callable[[str, str | None], bool]] = {
    "int": lambda v, _a: re.fullmatch(r"-?\d+", v) is not None and -(2**31) <= int(v) < 2**31,
    "long": lambda v, _a: re.fullmatch(r"-?\d+", v) is not None and -(2**63) <= int(v) < 2**63,
    "bool": lambda v, _a: v.lower() in ("true", "false"),
    "guid": lambda v, _a: (
        re.fullmatch(
            r"\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?", v
        )
        is not None
    ),
    "alpha": lambda v, _a: re.fullmatch(r"[A-Za-z]+", v) is not None,
    "decimal": lambda v, _a: _is_float(v),
    "double": lambda v, _a: _is_float(v),
    "float": lambda v, _a: _is_float(v),
    "datetime": lambda v, _a: _is_datetime(v),
    "minlength": lambda v, a: len(v) >= int(a or 0),
    "maxlength": lambda v, a: len(v) <= int(a or 0),
    "length": lambda v, a: _length_ok(v, a or "0"),
    "min": lambda v, a: _is_int(v) and int(v) >= int(a or 0),
    "max": lambda v, a: _is_int(v) and int(v) <= int(a or 0),
    "range": lambda v, a: _is_int(v) and _in_range(int(v), a or "0,0"),
    "regex": lambda v, a: re.search(a or "", v, re.IGNORECASE) is not None,
}


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_int(value: str) -> bool:
    return re.fullmatch(r"-?\d+", value) is not None


def _is_datetime(value: str) -> bool:
    from datetime import datetime

    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _length_ok(value: str, argument: str) -> bool:
    parts = [int(p) for p in argument.split(",")]
    return len(value) == parts[0] if len(parts) == 1 else parts[0] <= len(value) <= parts[1]


def _in_range(value: int, argument: str) -> bool:
    low, high = (int(p) for p in argument.split(","))
    return low <= value <= high


@dataclass(frozen=True)
class _Segment:
    literal: str | None = None
    name: str | None = None
    constraints: tuple[tuple[str, str | None], ...] = ()
    optional: bool = False
    catch_all: bool = False
    default: str | None = None


_PARAMETER = re.compile(
    r"^\{(\*{1,2})?([A-Za-z_][A-Za-z0-9_]*)((?::[^=?{}]+(?:\([^)]*\))?)*)(\?)?(?:=([^}]*))?\}$"
)


class RouteTemplate:
    """An ASP.NET Core route template as the Functions host uses it: `orders/{id:int}/{part?}`.

    Literal segments match case-insensitively; `{name}` matches one segment, `{name?}` may be
    absent at the end, `{*rest}` takes the remainder, `{name:constraint}` checks int, long,
    bool, guid, alpha, decimal/double/float, datetime, min/max/range, (min/max)length, regex.
    """

    def __init__(self, template: str) -> None:
        self.template = template.strip("/")
        self.segments = tuple(self._parse(part) for part in self.template.split("/")) if self.template else ()

    @staticmethod
    def _parse(part: str) -> _Segment:
        if "{" not in part:
            return _Segment(literal=part)
        match = _PARAMETER.match(part)
        if match is None:
            raise ValueError(f"unsupported route segment {part!r} (one parameter per segment)")
        stars, name, constraint_text, optional, default = match.groups()
        constraints: list[tuple[str, str | None]] = []
        for raw in re.findall(r":([^:(]+(?:\([^)]*\))?)", constraint_text or ""):
            kind, _, argument = raw.partition("(")
            kind = kind.strip().lower()
            if kind not in _CONSTRAINTS:
                raise ValueError(f"unsupported route constraint {kind!r} in {part!r}")
            constraints.append((kind, argument[:-1] if argument else None))
        return _Segment(
            name=name,
            constraints=tuple(constraints),
            optional=bool(optional),
            catch_all=bool(stars),
            default=default,
        )

    @property
    def precedence(self) -> tuple[Any, ...]:
        """Sort key: literals before constrained parameters before plain ones before catch-alls."""
        ranks = []
        for segment in self.segments:
            if segment.literal is not None:
                ranks.append(0)
            elif segment.catch_all:
                ranks.append(4)
            elif segment.optional:
                ranks.append(3)
            elif segment.constraints:
                ranks.append(1)
            else:
                ranks.append(2)
        return (tuple(ranks), -len(self.segments))

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for a request path (already without the route prefix), or None."""
        parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        values: dict[str, str] = {}
        index = 0
        for position, segment in enumerate(self.segments):
            if segment.catch_all:
                rest = "/".join(parts[index:])
                if rest and not self._allowed(segment, rest):
                    return None
                if rest or segment.default is not None:
                    values[str(segment.name)] = rest or str(segment.default)
                return values
            if index >= len(parts):
                if all(s.optional or s.default is not None or s.catch_all for s in self.segments[position:]):
                    for s in self.segments[position:]:
                        if s.default is not None:
                            values[str(s.name)] = s.default
                    return values
                return None
            part = parts[index]
            if segment.literal is not None:
                if part.lower() != segment.literal.lower():
                    return None
            else:
                if not self._allowed(segment, part):
                    return None
                values[str(segment.name)] = part
            index += 1
        return values if index == len(parts) else None

    @staticmethod
    def _allowed(segment: _Segment, value: str) -> bool:
        try:
            return all(_CONSTRAINTS[kind](value, argument) for kind, argument in segment.constraints)
        except (ValueError, re.error):
            return False


# ---------------------------------------------------------------------------------------------- Service Bus


def build_service_bus_message(message: QueueMessage) -> func.ServiceBusMessage:
    """A `func.ServiceBusMessage` built by the worker's own converter from host-style metadata."""
    expires_at = message.enqueued_at + DEFAULT_TIME_TO_LIVE_SECONDS
    properties = json.dumps(message.properties)
    metadata: dict[str, meta.Datum] = {
        "MessageId": meta.Datum(message.message_id, "string"),
        "DeliveryCount": meta.Datum(message.delivery_count, "int"),
        "EnqueuedTimeUtc": meta.Datum(utc_iso(message.enqueued_at), "string"),
        "ExpiresAtUtc": meta.Datum(utc_iso(expires_at), "string"),
        "SequenceNumber": meta.Datum(message.sequence_number, "int"),
        "EnqueuedSequenceNumber": meta.Datum(message.sequence_number, "int"),
        "State": meta.Datum(0, "int"),  # ServiceBusMessageState.Active
        "TimeToLive": meta.Datum(
            str(int(timedelta(seconds=DEFAULT_TIME_TO_LIVE_SECONDS).total_seconds())), "string"
        ),
        "UserProperties": meta.Datum(properties, "json"),
        "ApplicationProperties": meta.Datum(properties, "json"),
    }
    optional = {
        "ContentType": message.content_type,
        "CorrelationId": message.correlation_id,
        "Subject": message.subject,
        "Label": message.subject,
        "LockToken": message.lock_token,
    }
    for key, value in optional.items():
        if value is not None:
            metadata[key] = meta.Datum(value, "string")
    if message.locked_until is not None:
        metadata["LockedUntil"] = meta.Datum(utc_iso(message.locked_until), "string")
    body = meta.Datum(message.body, "bytes")
    decoded = ServiceBusMessageInConverter.decode(body, trigger_metadata=metadata)
    assert isinstance(decoded, func.ServiceBusMessage)
    return decoded


# ---------------------------------------------------------------------------------------------- durable logs

OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"
_INSTANCE_ID = re.compile(r'"instanceId":\s*"((?:[^"\\]|\\.)*)"')


def with_execution_logs(registry: Any, logger: logging.Logger) -> Any:
    """A copy of the engine's registry whose orchestrators and activities log one line per execution.

    The engine runs them silently; `func start` prints an `Executed 'Functions.X' (...)` line for
    every orchestrator episode and activity, with the failure and its traceback.
    """
    from dataclasses import replace

    for name, orchestrator in list(registry.orchestrators.items()):
        wrapped_handle = _logged_orchestrator(name, orchestrator.handle, logger)
        entry = replace(orchestrator.entry, user_function=wrapped_handle)
        registry.orchestrators[name] = replace(orchestrator, entry=entry)
    for name, activity in list(registry.activities.items()):
        wrapped = _logged_activity(name, activity.function, activity.is_async, logger)
        registry.activities[name] = replace(activity, entry=replace(activity.entry, user_function=wrapped))
    return registry


def _logged_orchestrator(
    name: str, handle: Callable[[str], str], logger: logging.Logger
) -> Callable[[str], str]:
    def run(request: str) -> str:
        found = _INSTANCE_ID.search(request)
        instance_id = json.loads(f'"{found.group(1)}"') if found else "?"
        started = time.perf_counter()
        try:
            reply = handle(request)
        except Exception as exc:
            # The SDK's error text carries .NET-style details after " \n "; the first line says it all.
            error = str(exc).split(OUT_OF_PROC_MARKER, 1)[0].split("\n", 1)[0].rstrip()
            cause = exc.__cause__ or exc.__context__ or exc
            logger.error("Executed 'Functions.%s' (Failed, InstanceId=%s, Duration=%dms): %s\n%s", name,
                         instance_id, elapsed_ms(started), error, format_traceback(cause))
            raise
        done = '"isDone": true' in reply[:40]
        logger.info("Executed 'Functions.%s' (Succeeded, InstanceId=%s, Duration=%dms%s)", name, instance_id,
                    elapsed_ms(started), ", orchestration done" if done else "")
        return reply

    return run


def _logged_activity(name: str, function: Callable[..., Any], is_async: bool,
                     logger: logging.Logger) -> Callable[..., Any]:
    def failed(started: float, exc: BaseException) -> None:
        logger.error("Executed 'Functions.%s' (Failed, Duration=%dms): %s\n%s", name, elapsed_ms(started),
                     failure_text(exc), format_traceback(exc))

    def succeeded(started: float) -> None:
        logger.info("Executed 'Functions.%s' (Succeeded, Duration=%dms)", name, elapsed_ms(started))

    if is_async:
        async def run_async(**kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = await function(**kwargs)
            except Exception as exc:
                failed(started, exc)
                raise
            succeeded(started)
            return result

        return run_async

    def run_sync(**kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = function(**kwargs)
        except Exception as exc:
            failed(started, exc)
            raise
        succeeded(started)
        return result

    return run_sync
