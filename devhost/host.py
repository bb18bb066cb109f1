"""`python -m devhost start`: the local stand-in for `func start` with the Durable extension.

Wires the loaded app, the durable engine, the HTTP surface and one queue pump per Service Bus
trigger; prints the function list, then exactly one `devhost ready on http://127.0.0.1:N` line;
stops cleanly (exit 0) on SIGTERM / Ctrl-C.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, TextIO

from aiohttp import web

from devhost.app import AppLoadError, LoadedApp, load_app
from devhost.engine import Engine
from devhost.http import DurableApi, HttpFunctions, build_web_app, http_routes, run_logged
from devhost.queues import Handler, NewMessage, PumpSettings, QueuePump, QueueStore
from devhost.registry import FunctionRegistry
from devhost.triggers import (
    ClientLinks,
    Invocation,
    TriggeredFunction,
    release_function_threads,
    with_execution_logs,
)

log = logging.getLogger("devhost.host")

DEFAULT_SERVICE_BUS_CONNECTION = "AzureWebJobsServiceBus"
HOST_LOCK_NAME = "host.lock"
DURABLE_TRIGGERS = ("orchestrationTrigger", "activityTrigger")
NOT_SERVED_REASONS = {
    "timerTrigger": "timer triggers do not run under the devhost",
    "eventHubTrigger": "Event Hubs triggers are not emulated",
    "blobTrigger": "blob triggers are not emulated",
    "queueTrigger": "Storage queue triggers are not emulated",
    "cosmosDBTrigger": "Cosmos DB triggers are not emulated",
    "eventGridTrigger": "Event Grid triggers are not emulated",
    "entityTrigger": "durable entities are not supported by the devhost",
}


class HostStartError(Exception):
    """The host cannot start; the message says what to fix."""


@dataclass(frozen=True)
class HostOptions:
    app_dir: Path
    port: int = 7071
    state_dir: Path | None = None
    max_delivery_count: int = 10
    lock_seconds: float = 60.0
    host: str = "127.0.0.1"

    @property
    def resolved_state_dir(self) -> Path:
        return self.state_dir if self.state_dir is not None else self.app_dir / ".devhost"


@dataclass
class ServedFunctions:
    """The app's functions sorted by what the devhost does with them."""

    http: list[TriggeredFunction] = field(default_factory=list)
    service_bus: list[tuple[TriggeredFunction, str]] = field(default_factory=list)  # (function, queue)
    durable: list[TriggeredFunction] = field(default_factory=list)
    not_served: list[tuple[TriggeredFunction, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def classify_functions(loaded: LoadedApp, environ: Mapping[str, str]) -> ServedFunctions:
    """Decide per function: served, or NOT SERVED with a reason; a missing connection is an error."""
    served = ServedFunctions()
    errors: list[str] = []
    for function in loaded.functions:
        fn = TriggeredFunction.from_function(function)
        kind = fn.trigger_type
        if kind in DURABLE_TRIGGERS:
            served.durable.append(fn)
        elif kind == "httpTrigger":
            served.http.append(fn)
        elif kind == "serviceBusTrigger":
            reason = _service_bus_unsupported(fn)
            if reason:
                served.not_served.append((fn, reason))
                continue
            problem = _check_connection(fn, environ, served.warnings)
            if problem:
                errors.append(problem)
                continue
            served.service_bus.append((fn, _resolve_setting(str(fn.trigger["queueName"]), environ)))
        else:
            served.not_served.append((fn, NOT_SERVED_REASONS.get(kind, f"{kind} triggers are not emulated")))
    for fn in served.http + [f for f, _ in served.service_bus]:
        unsupported = _unsupported_bindings(fn)
        if unsupported:
            errors.append(f"function '{fn.name}': binding {unsupported} is not available under the devhost")
    if errors:
        raise HostStartError("\n".join(errors))
    return served


def _service_bus_unsupported(fn: TriggeredFunction) -> str | None:
    trigger = fn.trigger
    if "queueName" not in trigger:
        return "Service Bus topic subscriptions are not emulated (only queues)"
    if str(trigger.get("isSessionsEnabled", "")).lower() == "true":
        return "Service Bus sessions are not emulated"
    if str(trigger.get("cardinality", "one")).lower() == "many":
        return 'cardinality="many" (batches) is not emulated; use cardinality="one"'
    return None


def _check_connection(fn: TriggeredFunction, environ: Mapping[str, str], warnings: list[str]) -> str | None:
    name = str(fn.trigger.get("connection") or DEFAULT_SERVICE_BUS_CONNECTION)
    value = environ.get(name)
    namespace = environ.get(f"{name}__fullyQualifiedNamespace")
    if not value and not namespace:
        return (
            f"function '{fn.name}': Service Bus connection setting '{name}' is not set. Add it to "
            f"local.settings.json Values or the environment (as in Azure, the trigger needs it; any value "
            f'works locally, e.g. "Endpoint=sb://localhost/;SharedAccessKeyName=devhost;SharedAccessKey=x")'
        )
    target = namespace or _endpoint_host(value or "")
    if target and not _is_local(target):
        warnings.append(
            f"function '{fn.name}': connection '{name}' names the namespace {target}; the devhost does not "
            f"read from it and serves its local queue '{fn.trigger.get('queueName')}' instead"
        )
    return None


def _endpoint_host(connection_string: str) -> str | None:
    for part in connection_string.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "endpoint":
            return value.strip().removeprefix("sb://").removeprefix("https://").strip("/")
    return None


def _is_local(host: str) -> bool:
    name = host.split(":", 1)[0].lower()
    return name in ("localhost", "127.0.0.1", "::1", "devhost") or name.endswith(".local")


def _resolve_setting(value: str, environ: Mapping[str, str]) -> str:
    # Binding expressions like "%QueueName%" come from app settings.
    if value.startswith("%") and value.endswith("%") and len(value) > 2:
        name = value[1:-1]
        if name not in environ:
            raise HostStartError(f"queue name {value} refers to app setting '{name}', which is not set")
        return str(environ[name])
    return value


def _unsupported_bindings(fn: TriggeredFunction) -> str | None:
    for binding in fn.bindings:
        if binding is fn.trigger:
            continue
        kind = binding.get("type")
        direction = str(binding.get("direction", "IN")).upper()
        if kind == "durableClient" or (kind == "http" and direction == "OUT"):
            continue
        if kind == "serviceBus" and direction == "OUT" and binding.get("queueName"):
            continue
        return f"{kind!r} ({binding.get('name')})"
    return None


# ---------------------------------------------------------------------------------------------- listing


def describe(served: ServedFunctions, base_url: str, route_prefix: str) -> list[str]:
    """The startup listing, in the spirit of `func start`."""
    lines = ["", "Functions:", ""]
    prefix = route_prefix.strip("/")
    for route in http_routes(served.http):
        methods = (
            ",".join(sorted(route.methods)) if route.methods else "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS"
        )
        path = "/".join(p for p in (prefix, route.template.template) if p)
        lines.append(f"        {route.function.name}: [{methods}] {base_url}/{path}")
    for fn, queue in served.service_bus:
        lines.append(f"        {fn.name}: serviceBusTrigger (local queue '{queue}')")
    for fn in served.durable:
        lines.append(f"        {fn.name}: {fn.trigger_type}")
    for fn, reason in served.not_served:
        lines.append(f"        NOT SERVED {fn.name}: {fn.trigger_type} ({reason})")
    lines += [
        "",
        "Auth levels are not enforced locally (as with func start): "
        "every HTTP function answers without keys.",
        f"Durable management API: {base_url}/runtime/webhooks/durabletask/instances",
    ]
    return lines


# ---------------------------------------------------------------------------------------------- host


class DevHost:
    """One running host: engine + HTTP + queue pumps."""

    def __init__(self, options: HostOptions, *, out: TextIO = sys.stdout) -> None:
        self.options = options
        self.out = out
        self.state_dir = options.resolved_state_dir
        self.base_url = f"http://{options.host}:{options.port}"
        self._runner: web.AppRunner | None = None
        self._engine: Engine | None = None
        self._pumps: list[QueuePump] = []
        self._queues: QueueStore | None = None
        self._lock_handle: IO[str] | None = None
        self._function_timeout: timedelta | None = None

    async def start(self) -> None:
        try:
            loaded = load_app(self.options.app_dir)
        except AppLoadError as exc:
            raise HostStartError(str(exc)) from exc
        served = classify_functions(loaded, os.environ)
        for warning in served.warnings:
            log.warning("%s", warning)
        self._function_timeout = loaded.host_config.function_timeout
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_state_dir()
        self._queues = QueueStore(self.state_dir)
        engine = self._engine = self._create_engine(loaded)
        links = ClientLinks(base_url=self.base_url, hub_name=loaded.hub_name)
        durable = DurableApi(engine, links, lambda: sorted(engine.registry.orchestrators))
        function_dir = str(loaded.app_dir)
        functions = HttpFunctions(
            routes=http_routes(served.http),
            links=links,
            function_directory=function_dir,
            route_prefix=loaded.host_config.http_route_prefix,
            run=self._run_http,
        )
        # In-flight requests get a few seconds at stop; a hung function must not block SIGTERM.
        self._runner = web.AppRunner(
            build_web_app(durable, functions), access_log=None, handle_signals=False, shutdown_timeout=5.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise HostStartError(f"cannot listen on {self.base_url}: {exc.strerror}") from exc
        # The engine starts once the port is ours: a second host never touches this state.
        await engine.start()
        settings = loaded.host_config.service_bus
        pump_settings = PumpSettings(
            max_delivery_count=self.options.max_delivery_count,
            lock_seconds=self.options.lock_seconds,
            max_lock_renewal=settings.max_auto_lock_renewal_duration or timedelta(0),
            max_concurrent_calls=settings.max_concurrent_calls,
        )
        for fn, queue in served.service_bus:
            pump = QueuePump(
                self._queues, fn, queue, pump_settings, self._run_service_bus(links, function_dir)
            )
            self._pumps.append(pump)
        for line in describe(served, self.base_url, loaded.host_config.http_route_prefix):
            print(line, file=self.out)
        for pump in self._pumps:
            pump.start()
        print(f"devhost ready on {self.base_url}", file=self.out, flush=True)

    def _lock_state_dir(self) -> None:
        """One host per state dir: two engines on one task hub would run every episode twice."""
        path = self.state_dir / HOST_LOCK_NAME
        handle = open(path, "a+")  # noqa: SIM115 - held open for the host's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise HostStartError(
                f"state dir {self.state_dir} is in use by another devhost ({owner}); stop it or pass "
                f"another --state-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, {self.base_url}")
        handle.flush()
        self._lock_handle = handle

    def _create_engine(self, loaded: LoadedApp) -> Engine:
        registry = with_execution_logs(FunctionRegistry.from_functions(loaded.functions), log)
        durable = loaded.host_config.durable_task
        return Engine(
            registry,
            self.state_dir,
            max_concurrent_activities=durable.max_concurrent_activity_functions,
            max_concurrent_orchestrators=durable.max_concurrent_orchestrator_functions,
            logger=logging.getLogger("devhost.engine"),
            activity_timeout=loaded.host_config.function_timeout,
        )

    async def _run_http(self, invocation: Invocation) -> Any:
        return await run_logged(
            invocation,
            reason="HTTP request",
            logger=log,
            send_to_queue=self._send_to_queue,
            timeout=self._function_timeout,
        )

    def _run_service_bus(self, links: ClientLinks, function_dir: str) -> Handler:
        async def run(fn: TriggeredFunction, message: Any, message_id: str) -> Any:
            invocation = Invocation(fn, message, links, function_dir)
            return await run_logged(
                invocation,
                reason=f"New ServiceBus message detected (MessageId={message_id})",
                logger=log,
                send_to_queue=self._send_to_queue,
                timeout=self._function_timeout,
            )

        return run

    def _send_to_queue(self, queue: str, value: Any) -> None:
        assert self._queues is not None
        if isinstance(value, bytes):
            body = value
        elif isinstance(value, str):
            body = value.encode("utf-8")
        else:
            body = json.dumps(value).encode("utf-8")
        self._queues.enqueue(queue, NewMessage(body))

    async def stop(self) -> None:
        for pump in self._pumps:
            pump.request_stop()
        for pump in self._pumps:
            await pump.wait_stopped()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._engine is not None:
            await self._engine.stop()
        release_function_threads()
        if self._lock_handle is not None:
            self._lock_handle.close()  # closing the file releases the lock
            self._lock_handle = None


async def serve(options: HostOptions, *, out: TextIO = sys.stdout) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    host = DevHost(options, out=out)
    try:
        await host.start()
    except HostStartError as exc:
        await host.stop()
        print(f"devhost: cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    await stop.wait()
    log.info("devhost stopping")
    await host.stop()
    print("devhost stopped", file=out, flush=True)
    return 0


def run_host(options: HostOptions) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", stream=sys.stderr)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    code = asyncio.run(serve(options))
    lingering = [
        t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive() and not t.daemon
    ]
    if lingering:
        # A function that never returns must not keep the host alive after SIGTERM (the Functions
        # host kills its worker the same way); Python would otherwise join the thread at exit.
        log.warning(
            "devhost: %d function thread(s) still running at stop; exiting without them", len(lingering)
        )
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
