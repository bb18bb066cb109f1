"""The devhost's HTTP surface (one aiohttp app, one port).

* `/api/<route>`: HTTP-triggered functions (route prefix from host.json).
* `/runtime/webhooks/durabletask/...`: the public durable management API (durable-protocol.md §7).
* `/durabletask/...`: the RPC base URL the SDK's `DurableOrchestrationClient` calls (§6.3); the
  real extension serves both from one handler, and so does this module.
* `GET /admin/host/status`: `{"state": "Running"}` like Core Tools.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from aiohttp import web

from devhost.engine import Engine
from devhost.protocol import EVENT_TYPE_NAMES, ORCHESTRATION_STATUS_NAMES
from devhost.status import (
    InstanceAlreadyRunning,
    InstanceGone,
    InstanceNotFound,
    InstanceStatus,
    InvalidInstanceState,
    RuntimeStatus,
)
from devhost.triggers import (
    RPC_PATH,
    WEBHOOK_PATH,
    ClientLinks,
    Invocation,
    RouteTemplate,
    TriggeredFunction,
    build_http_request,
    elapsed_ms,
    failure_text,
    format_traceback,
    http_result,
    invoke,
)
from devhost.workers import timespan_text

log = logging.getLogger("devhost.http")

TERMINAL_STATUSES = ("Completed", "Failed", "Terminated", "Canceled")
RUNNING_STATUSES = ("Running", "Pending", "Suspended", "ContinuedAsNew")
ALL_STATUSES = (
    "Running",
    "Completed",
    "ContinuedAsNew",
    "Failed",
    "Canceled",
    "Terminated",
    "Pending",
    "Suspended",
)
CONTINUATION_HEADER = "x-ms-continuation-token"
ALREADY_EXISTS_TYPE = "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"


# ---------------------------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An HTTP error answer with the host's `CreateErrorResponse` body."""

    def __init__(self, status: int, message: str, exception_message: str, exception_type: str) -> None:
        super().__init__(exception_message)
        self.status = status
        self.message = message
        self.exception_message = exception_message
        self.exception_type = exception_type

    def response(self) -> web.Response:
        body = {
            "Message": self.message,
            "ExceptionMessage": self.exception_message,
            "ExceptionType": self.exception_type,
            "StackTrace": None,
        }
        return web.json_response(body, status=self.status)


def bad_request(detail: str) -> ApiError:
    return ApiError(
        400, "One or more of the arguments submitted is incorrect", detail, "System.ArgumentException"
    )


def server_error(detail: str, exception_type: str = "System.InvalidOperationException") -> ApiError:
    return ApiError(500, "Something went wrong while processing your request", detail, exception_type)


# ---------------------------------------------------------------------------------------------- engine view


def status_name(value: RuntimeStatus | str) -> str:
    """Runtime status as the host spells it."""
    return str(value.value) if isinstance(value, RuntimeStatus) else str(value)


def host_time(value: Any) -> str | None:
    """`createdTime`/`lastUpdatedTime`: `DateTime.ToString("s") + "Z"` (no fractions)."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else _parse_time(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime:
    text = text.strip().replace(" ", "+") if "T" in text else text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # .NET writes 7 fractional digits; Python takes at most 6.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_json_or_text(text: str | None) -> Any:
    """The host's `ParseToJToken`: JSON when it parses, else the raw string; None stays None."""
    if text is None:
        return None
    text = text.strip()
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


def compact_json(value: Any) -> str:
    """How Newtonsoft writes a JToken: compact, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def status_payload(
    status: InstanceStatus, *, show_input: bool, history: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """`StatusResponsePayload` (§7.2)."""
    payload: dict[str, Any] = {
        "name": status.name,
        "instanceId": status.instance_id,
        "runtimeStatus": status_name(status.runtime_status),
        "input": parse_json_or_text(status.input_text) if show_input else None,
        "customStatus": parse_json_or_text(status.custom_status_text),
        "output": parse_json_or_text(status.output_text),
        "createdTime": host_time(status.created_time),
        "lastUpdatedTime": host_time(status.last_updated_time),
    }
    if history is not None:
        payload["historyEvents"] = history
    return payload


def history_events(
    raw: Sequence[dict[str, Any]], *, show_input: bool, show_output: bool
) -> list[dict[str, Any]]:
    """The status API's `historyEvents`: the raw history transformed as DurableClient does (§7.2)."""
    events = [dict(e) for e in raw]
    scheduled: dict[tuple[int, int], int] = {}  # (scheduling type, EventId) -> index
    drop: set[int] = set()
    for index, event in enumerate(events):
        kind = int(event.get("EventType", -1))
        if kind in (4, 7):
            scheduled[(kind, int(event.get("EventId", -1)))] = index
    for index, event in enumerate(events):
        kind = int(event.get("EventType", -1))
        if 0 <= kind < len(EVENT_TYPE_NAMES):
            event["EventType"] = EVENT_TYPE_NAMES[kind]
        if kind in (12, 13):
            drop.add(index)
        elif kind in (4, 7):
            event.pop("Version", None)
        elif kind in (5, 6, 8, 9):
            source_kind = 4 if kind in (5, 6) else 7
            task_id = event.pop("TaskScheduledId", None)
            source_index = scheduled.get((source_kind, int(task_id))) if task_id is not None else None
            if source_index is not None:
                source = events[source_index]
                event["ScheduledTime"] = source.get("Timestamp")
                event["FunctionName"] = source.get("Name")
                if show_input:
                    event["Input"] = source.get("Input")
                drop.add(source_index)
            if kind in (5, 8):
                if show_output:
                    event["Result"] = parse_json_or_text(event.get("Result"))
                else:
                    event.pop("Result", None)
        elif kind == 0:
            event["FunctionName"] = event.pop("Name", None)
            for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                event.pop(key, None)
        elif kind == 1:
            status = event.get("OrchestrationStatus")
            if isinstance(status, int) and 0 <= status < len(ORCHESTRATION_STATUS_NAMES):
                event["OrchestrationStatus"] = ORCHESTRATION_STATUS_NAMES[status]
            if show_output:
                event["Result"] = parse_json_or_text(event.get("Result"))
            else:
                event.pop("Result", None)
        elif kind == 11:
            event.pop("TimerId", None)
        if not show_input:
            event.pop("Input", None)
        event.pop("EventId", None)
        event.pop("IsPlayed", None)
    return [event for index, event in enumerate(events) if index not in drop]


def _query_bool(query: dict[str, str], key: str, default: bool) -> bool:
    value = _query_get(query, key)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return default  # .NET bool.TryParse failure keeps the default


def _query_get(query: dict[str, str], key: str) -> str | None:
    lowered = key.lower()
    return next((v for k, v in query.items() if k.lower() == lowered), None)


def _query_time(query: dict[str, str], key: str) -> datetime | None:
    value = _query_get(query, key)
    if value is None or value == "":
        return None
    try:
        return _parse_time(value)
    except ValueError:
        raise bad_request(f"{key} {value!r} is not a valid date and time") from None


def _query_statuses(query: dict[str, str]) -> list[str] | None:
    value = _query_get(query, "runtimeStatus")
    if not value:
        return None
    names: list[str] = []
    for part in value.split(","):
        match = next((s for s in ALL_STATUSES if s.lower() == part.strip().lower()), None)
        if match is None:
            raise bad_request(f"runtimeStatus {part.strip()!r} is not one of {', '.join(ALL_STATUSES)}")
        names.append(match)
    return names


def _query_seconds(query: dict[str, str], key: str) -> float | None:
    value = _query_get(query, key)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise bad_request(f"{key} {value!r} is not a number of seconds") from None
    if seconds < 0:
        raise bad_request(f"{key} must not be negative")
    return seconds


def validate_instance_id(instance_id: str) -> None:
    """The host's instance id rules (durable-protocol.md §9.2)."""
    if not instance_id:
        raise bad_request("Instance ID must not be empty.")
    if len(instance_id) > 256:
        raise bad_request(f"Instance ID lengths must not exceed 256 characters (it has {len(instance_id)}).")
    if instance_id.startswith("@"):
        raise bad_request(f"Orchestration instance ids must not start with @. Instance ID: {instance_id}")
    if any(c in instance_id for c in "/\\#?") or any(ord(c) < 32 or ord(c) == 127 for c in instance_id):
        raise bad_request(
            f"Instance ID '{instance_id}' contains invalid characters. Characters such as '/', '\\', '#', "
            "'?' and control characters are not allowed."
        )


# ---------------------------------------------------------------------------------------------- durable API


@dataclass
class DurableApi:
    """One handler for the management webhooks and the SDK's RPC routes."""

    engine: Engine
    links: ClientLinks
    orchestrator_names: Callable[[], list[str]]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except ApiError as error:
            return error.response()
        except web.HTTPException:
            raise
        except Exception as exc:
            mapped = _engine_error_response(exc)
            if mapped is not None:
                return mapped
            # The host answers 500 for anything unexpected, and keeps serving.
            log.error(
                "durable HTTP API error on %s %s\n%s", request.method, request.path_qs, format_traceback(exc)
            )
            return server_error(str(exc), type(exc).__name__).response()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        segments = _tail_segments(request)
        query = dict(parse_qsl(urlsplit(str(request.rel_url)).query, keep_blank_values=True))
        method = request.method
        head = segments[0].lower() if segments else ""
        if head == "orchestrators" and method == "POST" and len(segments) in (2, 3):
            instance_id = segments[2] if len(segments) == 3 and segments[2] else None
            return await self.start(request, segments[1], instance_id, query)
        if head == "instances":
            rest = [s for s in segments[1:]]
            if not rest or rest == [""]:
                if method == "GET":
                    return await self.list_instances(request, query)
                if method == "DELETE":
                    return await self.purge_by(query)
            elif len(rest) == 1:
                if method == "GET":
                    return await self.get_status(request, rest[0], query)
                if method == "DELETE":
                    return await self.purge(rest[0])
            elif method == "POST" and len(rest) == 3 and rest[1].lower() == "raiseevent":
                return await self.raise_event(request, rest[0], rest[2])
            elif method == "POST" and len(rest) == 2:
                operation = rest[1].lower()
                if operation in ("terminate", "suspend", "resume", "rewind"):
                    return await self.control(rest[0], operation, _query_get(query, "reason"))
                if operation == "restart":
                    return await self.restart(request, rest[0], query)
        if head == "entities":
            raise ApiError(
                501,
                "Durable entities are not supported by the devhost",
                "Durable entities are not supported by the devhost (no entity backend).",
                "System.NotSupportedException",
            )
        return web.Response(status=404)

    # -- start ---------------------------------------------------------------------------------------

    async def start(
        self, request: web.Request, name: str, instance_id: str | None, query: dict[str, str]
    ) -> web.StreamResponse:
        known = self.orchestrator_names()
        match = next((n for n in known if n.lower() == name.lower()), None)
        if match is None:
            listed = ", ".join(f"'{n}'" for n in known)
            raise bad_request(
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function. "
                f"Additional info: The following are the active orchestrator functions: {listed}."
            )
        if instance_id is not None:
            validate_instance_id(instance_id)
        input_text = await _json_body_text(request, required=False)
        timeout, interval = _wait_options(query)
        new_id = await self._start_new(match, instance_id, input_text)
        if timeout is None:
            return self.check_status_response(request, new_id)
        return await self._wait_or_check_status(request, new_id, timeout, interval or 1.0)

    async def _start_new(self, name: str, instance_id: str | None, input_text: str | None) -> str:
        try:
            return await self.engine.start_new(name, instance_id=instance_id, input_text=input_text)
        except ValueError as exc:
            raise bad_request(str(exc)) from exc
        except InstanceAlreadyRunning as exc:
            # The engine's text is the host's: "An Orchestration instance with the status X already exists."
            raise server_error(str(exc), ALREADY_EXISTS_TYPE) from exc

    def check_status_response(self, request: web.Request, instance_id: str) -> web.Response:
        """202 + check-status payload, `Location` and `Retry-After: 10` (§7.3)."""
        links = self.links.check_status_links(_origin(request), instance_id)
        return web.json_response(
            links,
            status=202,
            headers={
                "Location": links["statusQueryGetUri"],
                "Retry-After": "10",
            },
        )

    async def _wait_or_check_status(
        self, request: web.Request, instance_id: str, timeout: float, interval: float
    ) -> web.StreamResponse:
        deadline = time.monotonic() + timeout
        while True:
            status = self.engine.get_status(instance_id)
            if status is not None and status.runtime_status == RuntimeStatus.COMPLETED:
                output = parse_json_or_text(status.output_text)
                return web.Response(status=200, text=compact_json(output), content_type="application/json")
            if status is not None and status_name(status.runtime_status) in TERMINAL_STATUSES:
                return web.json_response(status_payload(status, show_input=True), status=200)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self.check_status_response(request, instance_id)
            await self._wait_for_change(instance_id, min(interval, remaining))

    async def _wait_for_change(self, instance_id: str, seconds: float) -> None:
        try:
            await self.engine.wait_for_status(instance_id, list(TERMINAL_STATUSES), seconds)
        except TimeoutError:
            return

    # -- status and listing ----------------------------------------------------------------------------

    async def get_status(self, request: web.Request, instance_id: str, query: dict[str, str]) -> web.Response:
        status = self.engine.get_status(instance_id)
        if status is None:
            return web.Response(status=404)
        show_input = _query_bool(query, "showInput", True)
        state = status_name(status.runtime_status)
        history = None
        if _query_bool(query, "showHistory", False) and state != "Pending":
            raw = self.engine.get_history(instance_id)
            history = history_events(
                raw or [], show_input=show_input, show_output=_query_bool(query, "showHistoryOutput", False)
            )
        payload = status_payload(status, show_input=show_input, history=history)
        if state in RUNNING_STATUSES:
            return web.json_response(
                payload,
                status=202,
                headers={
                    "Location": str(request.url),
                    "Retry-After": "5",
                },
            )
        if state == "Failed" and _query_bool(query, "returnInternalServerErrorOnFailure", False):
            return web.json_response(payload, status=500)
        return web.json_response(payload, status=200)

    async def list_instances(self, request: web.Request, query: dict[str, str]) -> web.Response:
        created_from = _query_time(query, "createdTimeFrom")
        created_to = _query_time(query, "createdTimeTo")
        statuses = _query_statuses(query)
        prefix = _query_get(query, "instanceIdPrefix") or None
        top_text = _query_get(query, "top")
        top = None
        if top_text:
            if not top_text.isdigit() or int(top_text) < 1:
                raise bad_request(f"top {top_text!r} must be a positive integer")
            top = int(top_text)
        continuation = request.headers.get(CONTINUATION_HEADER) or None
        show_input = _query_bool(query, "showInput", True)
        try:
            found, next_token = self.engine.list_instances(
                created_from, created_to, statuses, prefix, top or 100, continuation
            )
        except ValueError as exc:
            raise bad_request(str(exc)) from exc
        body = [status_payload(s, show_input=show_input) for s in found]
        headers = {CONTINUATION_HEADER: str(next_token)} if next_token else {}
        return web.json_response(body, status=200, headers=headers)

    # -- purge -------------------------------------------------------------------------------------------

    async def purge(self, instance_id: str) -> web.Response:
        deleted = await self.engine.purge(instance_id)
        if deleted == 0:
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": deleted}, status=200)

    async def purge_by(self, query: dict[str, str]) -> web.Response:
        created_from = _query_time(query, "createdTimeFrom")
        if created_from is None:
            return web.Response(status=400, text="Please provide value for 'createdTimeFrom' parameter.")
        created_to = _query_time(query, "createdTimeTo") or datetime.now(UTC)
        # Azure Storage purges only instances in a terminal state, whatever the filter says.
        requested = _query_statuses(query) or list(TERMINAL_STATUSES)
        statuses = [s for s in requested if s in TERMINAL_STATUSES]
        deleted = await self.engine.purge_by(created_from, created_to, statuses) if statuses else 0
        if deleted == 0:
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": deleted}, status=200)

    # -- events and control -------------------------------------------------------------------------------

    async def raise_event(self, request: web.Request, instance_id: str, event_name: str) -> web.Response:
        status = self.engine.get_status(instance_id)
        if status is None:
            return web.Response(status=404)
        if status_name(status.runtime_status) in TERMINAL_STATUSES:
            return web.Response(status=410)
        if request.content_type.lower() != "application/json":
            raise bad_request("Only application/json request content is supported")
        input_text = await _json_body_text(request, required=True)
        await self.engine.raise_event(instance_id, event_name, input_text)
        return web.Response(status=202)

    async def control(self, instance_id: str, operation: str, reason: str | None) -> web.Response:
        status = self.engine.get_status(instance_id)
        if status is None:
            return web.Response(status=404)
        state = status_name(status.runtime_status)
        if operation == "rewind":
            if state in ("Completed", "Terminated", "Canceled"):
                return web.Response(status=410)
            if state != "Failed":
                raise server_error(
                    f"Cannot rewind instance {instance_id}: its status is {state}, not Failed."
                )
            # The SDK raises a plain string body as the error message.
            return web.json_response(
                "Rewind is not supported by the devhost: restart the instance instead "
                f"(POST .../instances/{instance_id}/restart).",
                status=501,
            )
        if state in TERMINAL_STATUSES:
            return web.Response(status=410)
        if operation == "suspend" and state == "Suspended":
            raise server_error(f"Instance {instance_id} is already suspended.")
        if operation == "resume" and state != "Suspended":
            raise server_error(
                f"Instance {instance_id} cannot be resumed: its status is {state}, not Suspended."
            )
        if operation == "terminate":
            await self.engine.terminate(instance_id, reason)
        elif operation == "suspend":
            await self.engine.suspend(instance_id, reason)
        else:
            await self.engine.resume(instance_id, reason)
        return web.Response(status=202)

    async def restart(
        self, request: web.Request, instance_id: str, query: dict[str, str]
    ) -> web.StreamResponse:
        if self.engine.get_status(instance_id) is None:
            raise bad_request("InstanceId does not match a valid orchestration instance.")
        new_instance_id = _query_bool(query, "restartWithNewInstanceId", True)
        timeout, interval = _wait_options(query)
        try:
            new_id = await self.engine.restart(instance_id, new_instance_id=new_instance_id)
        except InstanceAlreadyRunning as exc:
            raise server_error(str(exc), ALREADY_EXISTS_TYPE) from exc
        except ValueError as exc:
            raise bad_request(str(exc)) from exc
        if timeout is None:
            return self.check_status_response(request, new_id)
        return await self._wait_or_check_status(request, new_id, timeout, interval or 1.0)


def _engine_error_response(exc: Exception) -> web.Response | None:
    """A state change between our check and the engine call: answer as if we had seen it first."""
    if isinstance(exc, InstanceNotFound):
        return web.Response(status=404)
    if isinstance(exc, InstanceGone):
        return web.Response(status=410)
    if isinstance(exc, InvalidInstanceState):
        return server_error(str(exc)).response()
    return None


def _wait_options(query: dict[str, str]) -> tuple[float | None, float | None]:
    timeout = _query_seconds(query, "timeout")
    interval = _query_seconds(query, "pollingInterval")
    if timeout is not None and interval is not None and interval > timeout:
        raise bad_request(f"Total timeout {timeout:g} should be bigger than retry timeout {interval:g}")
    return timeout, interval


async def _json_body_text(request: web.Request, *, required: bool) -> str | None:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise bad_request("The request body must contain JSON.")
        return None
    try:
        value = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from exc
    return compact_json(value)


def _tail_segments(request: web.Request) -> list[str]:
    # Split the raw path so an encoded '/' in an event name stays inside its segment.
    raw = request.raw_path.split("?", 1)[0]
    for prefix in (WEBHOOK_PATH + "/", RPC_PATH):
        if raw.lower().startswith(prefix.lower()):
            raw = raw[len(prefix) :]
            break
    return [unquote(part) for part in raw.split("/")] if raw else []


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


# ---------------------------------------------------------------------------------------------- /api


@dataclass(frozen=True)
class HttpFunctionRoute:
    function: TriggeredFunction
    template: RouteTemplate
    methods: frozenset[str] | None  # None = every method


def http_routes(functions: Sequence[TriggeredFunction]) -> list[HttpFunctionRoute]:
    """Routes of the HTTP-triggered functions, most specific first (ASP.NET precedence)."""
    routes = []
    for fn in functions:
        route = fn.trigger.get("route") or fn.name
        methods = fn.trigger.get("methods")
        allowed = frozenset(str(m).upper() for m in methods) if methods else None
        routes.append(HttpFunctionRoute(fn, RouteTemplate(str(route)), allowed))
    return sorted(routes, key=lambda r: r.template.precedence)


Dispatcher = Callable[[Invocation], Awaitable[Any]]


@dataclass
class HttpFunctions:
    """Serves `/<prefix>/<route>` by invoking the matching function."""

    routes: list[HttpFunctionRoute]
    links: ClientLinks
    function_directory: str
    route_prefix: str
    run: Dispatcher

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # Match on the raw path: RouteTemplate decodes each segment once, so '%2F' stays inside it.
        raw = request.raw_path.split("?", 1)[0].lstrip("/")
        prefix = self.route_prefix.strip("/")
        if prefix:
            # Routes (prefix included) are case-insensitive in the Functions host.
            lowered, wanted = raw.lower(), prefix.lower()
            if lowered != wanted and not lowered.startswith(wanted + "/"):
                return web.Response(status=404)
            raw = raw[len(prefix) + 1 :]
        path = raw
        matched_path = False
        for route in self.routes:
            values = route.template.match(path)
            if values is None:
                continue
            matched_path = True
            if route.methods is not None and request.method.upper() not in route.methods:
                continue
            return await self._call(request, route, values)
        return web.Response(status=405 if matched_path else 404)

    async def _call(
        self, request: web.Request, route: HttpFunctionRoute, values: dict[str, str]
    ) -> web.Response:
        body = await request.read()
        http_request = build_http_request(
            method=request.method,
            url=str(request.url),
            headers=list(request.headers.items()),
            query=list(request.query.items()),
            route_params=values,
            body=body,
        )
        invocation = Invocation(route.function, http_request, self.links, self.function_directory)
        try:
            value = await self.run(invocation)
            result = http_result(value)
        except Exception:
            return web.Response(status=500)
        response = web.Response(status=result.status, body=result.body)
        for key, header_value in result.headers:
            if key.lower() == "content-type":
                response.headers["Content-Type"] = header_value
            else:
                response.headers.add(key, header_value)
        return response


class FunctionTimeoutError(Exception):
    """The invocation ran past host.json functionTimeout."""


async def run_logged(
    invocation: Invocation,
    *,
    reason: str,
    logger: logging.Logger,
    send_to_queue: Callable[[str, Any], None] | None = None,
    timeout: timedelta | None = None,
) -> Any:
    """Invoke a function and write the one `Executed` line (with a traceback on failure).

    `timeout` is host.json `functionTimeout`: past it the invocation fails like in the host (a
    synchronous function's thread cannot be stopped and finishes unobserved).
    """
    started = time.perf_counter()
    name = invocation.function.name
    try:
        try:
            async with asyncio.timeout(timeout.total_seconds() if timeout else None) as budget:
                value = await invoke(invocation, send_to_queue)
        except TimeoutError:
            if not budget.expired():
                raise  # the function's own TimeoutError
            raise FunctionTimeoutError(
                f"Timeout value of {timespan_text(timeout)} exceeded by function 'Functions.{name}' "
                f"(Id: '{invocation.invocation_id}'). Initiating cancellation."
            ) from None
        if invocation.function.trigger_type == "httpTrigger":
            http_result(value)  # a return value the host cannot send is the function's failure
    except Exception as exc:
        logger.error(
            "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms, Reason=%s): %s\n%s",
            name,
            invocation.invocation_id,
            elapsed_ms(started),
            reason,
            failure_text(exc),
            format_traceback(exc),
        )
        raise
    logger.info(
        "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms, Reason=%s)",
        name,
        invocation.invocation_id,
        elapsed_ms(started),
        reason,
    )
    return value


# ---------------------------------------------------------------------------------------------- the app


async def host_status(_request: web.Request) -> web.Response:
    return web.json_response({"state": "Running"})


def build_web_app(durable: DurableApi, functions: HttpFunctions) -> web.Application:
    app = web.Application(client_max_size=100 * 1024 * 1024)  # the Functions host accepts 100 MB
    app.router.add_get("/admin/host/status", host_status)
    app.router.add_route("*", WEBHOOK_PATH + "/{tail:.*}", durable.handle)
    app.router.add_route("*", RPC_PATH + "{tail:.*}", durable.handle)
    # Everything else is for the functions; their handler checks the route prefix itself.
    app.router.add_route("*", "/{tail:.*}", functions.handle)
    return app
