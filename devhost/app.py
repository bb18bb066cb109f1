"""Load a function app folder the way Core Tools and the Python worker do.

Order matters and mirrors `func start`: `local.settings.json` `Values` go into the environment first
(the real environment wins), `host.json` is read and validated, then `function_app.py` is imported
with the app folder first on `sys.path` and its top-level `FunctionApp`/`DFApp` is indexed.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func

APP_MODULE_NAME = "function_app"
APP_FILE_NAME = "function_app.py"
HOST_FILE_NAME = "host.json"
SETTINGS_FILE_NAME = "local.settings.json"
# Core Tools' default hub name when host.json names none and no site name is set.
DEFAULT_HUB_NAME = "TestHubName"


class AppLoadError(Exception):
    """The app folder cannot be loaded; the message is one line a user can act on."""

    def __init__(self, message: str, *, file: Path | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.line = line


@dataclass(frozen=True)
class DurableTaskConfig:
    """`extensions.durableTask` of host.json, with the extension's defaults filled in."""

    hub_name: str
    max_concurrent_activity_functions: int
    max_concurrent_orchestrator_functions: int
    max_concurrent_entity_functions: int
    store_inputs_in_orchestration_history: bool
    max_orchestration_actions: int


@dataclass(frozen=True)
class ServiceBusConfig:
    """`extensions.serviceBus` of host.json (extension 5.x names, 4.x `messageHandlerOptions` accepted)."""

    max_concurrent_calls: int
    max_concurrent_sessions: int
    prefetch_count: int
    auto_complete_messages: bool
    max_auto_lock_renewal_duration: timedelta
    max_message_batch_size: int


@dataclass(frozen=True)
class HostConfig:
    """What the devhost uses from host.json; `raw` keeps the whole document for anything else."""

    raw: Mapping[str, Any]
    durable_task: DurableTaskConfig
    service_bus: ServiceBusConfig
    http_route_prefix: str
    function_timeout: timedelta | None


@dataclass(frozen=True)
class LocalSettings:
    """What `local.settings.json` contributed to the environment."""

    applied: tuple[str, ...] = ()
    # Names defined both in the file and in the real environment: the environment's value was kept.
    skipped: tuple[str, ...] = ()
    found: bool = False
    # "Host": {"LocalHttpPort": N}: Core Tools' default port when --port is not given.
    local_http_port: int | None = None


@dataclass(frozen=True)
class LoadedApp:
    app_dir: Path
    module: ModuleType
    app: func.FunctionRegister
    functions: list[func.Function]
    host_config: HostConfig
    settings: LocalSettings = field(default_factory=LocalSettings)

    @property
    def hub_name(self) -> str:
        return self.host_config.durable_task.hub_name

    @property
    def settings_applied(self) -> tuple[str, ...]:
        return self.settings.applied


def load_app(app_dir: Path, *, environ: MutableMapping[str, str] | None = None) -> LoadedApp:
    """Apply settings, read host.json and import + index `function_app.py` from `app_dir`."""
    env = os.environ if environ is None else environ
    app_dir = Path(app_dir).resolve()
    if not app_dir.is_dir():
        raise AppLoadError(f"app folder {app_dir} does not exist")
    app_file = app_dir / APP_FILE_NAME
    if not app_file.is_file():
        raise AppLoadError(
            f"{app_file}: no {APP_FILE_NAME} in {app_dir} (the v2 Python programming model needs one; "
            f"pass --app-dir to point at the function app folder)",
            file=app_file,
        )
    settings = apply_local_settings(app_dir / SETTINGS_FILE_NAME, env)
    host_config = read_host_config(app_dir / HOST_FILE_NAME, env)
    module = import_app_module(app_dir)
    app = find_function_app(module, app_file)
    functions = index_functions(app, app_file)
    return LoadedApp(
        app_dir=app_dir,
        module=module,
        app=app,
        functions=functions,
        host_config=host_config,
        settings=settings,
    )


# ---------------------------------------------------------------------------------------------- settings


def apply_local_settings(path: Path, environ: MutableMapping[str, str]) -> LocalSettings:
    """Put `Values` into `environ` without overwriting anything already there (Core Tools' rule)."""
    if not path.is_file():
        return LocalSettings()
    document = _read_json_object(path)
    if document.get("IsEncrypted") is True:
        raise AppLoadError(
            f"{path}: IsEncrypted is true; the devhost cannot decrypt settings. "
            f"Run `func settings decrypt` or write plain values and set IsEncrypted to false",
            file=path,
        )
    values = document.get("Values", {})
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise AppLoadError(f'{path}: "Values" must be an object of name/value pairs', file=path)
    applied: list[str] = []
    skipped: list[str] = []
    for name, value in values.items():
        text = _setting_text(path, name, value)
        if name in environ:
            skipped.append(name)
            continue
        environ[name] = text
        applied.append(name)
    return LocalSettings(
        applied=tuple(applied),
        skipped=tuple(skipped),
        found=True,
        local_http_port=_local_http_port(document, path),
    )


def _local_http_port(document: dict[str, Any], path: Path) -> int | None:
    host = document.get("Host")
    if host is None:
        return None
    if not isinstance(host, dict):
        raise AppLoadError(f'{path}: "Host" must be an object', file=path)
    port = _int(host, "LocalHttpPort", 0, path, "Host.", minimum=0)
    if port > 65535:
        raise AppLoadError(f"{path}: Host.LocalHttpPort {port} is not a port number", file=path)
    return port or None


def _setting_text(path: Path, name: str, value: object) -> str:
    if isinstance(value, str):
        return value
    # Core Tools reads Values as strings; a JSON number or boolean arrives as its text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    raise AppLoadError(
        f"{path}: setting {name!r} must be a string (got {type(value).__name__}: {json.dumps(value)[:60]})",
        file=path,
    )


# ---------------------------------------------------------------------------------------------- host.json


def read_host_config(path: Path, environ: Mapping[str, str] | None = None) -> HostConfig:
    """Parse and validate host.json; missing values take the Functions host's defaults."""
    env = os.environ if environ is None else environ
    if not path.is_file():
        raise AppLoadError(f"{path}: host.json is missing (every function app needs one)", file=path)
    document = _read_json_object(path, strict=True)
    version = document.get("version")
    if version != "2.0":
        raise AppLoadError(
            f'{path}: "version" must be "2.0" (found {json.dumps(version)}); '
            f"the Functions host rejects any other host.json schema",
            file=path,
        )
    extensions = _section(document, "extensions", path)
    durable = _section(extensions, "durableTask", path, "extensions.")
    service_bus = _section(extensions, "serviceBus", path, "extensions.")
    http = _section(extensions, "http", path, "extensions.")
    return HostConfig(
        raw=document,
        durable_task=_durable_task_config(durable, path, env),
        service_bus=_service_bus_config(service_bus, path),
        http_route_prefix=_string(http, "routePrefix", "api", path, "extensions.http."),
        function_timeout=_function_timeout(document.get("functionTimeout"), path),
    )


def _durable_task_config(section: Mapping[str, Any], path: Path, env: Mapping[str, str]) -> DurableTaskConfig:
    cores = os.cpu_count() or 1
    where = "extensions.durableTask."
    hub_name = _resolve_app_setting(_string(section, "hubName", DEFAULT_HUB_NAME, path, where), path, env)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,44}", hub_name):
        raise AppLoadError(
            f"{path}: task hub name {hub_name!r} is invalid: it must start with a letter, contain only "
            f"letters and digits and be 3 to 45 characters long",
            file=path,
        )
    return DurableTaskConfig(
        hub_name=hub_name,
        # Dedicated/Premium defaults (10 per core); local Core Tools behaves the same way.
        max_concurrent_activity_functions=_positive_int(
            section, "maxConcurrentActivityFunctions", 10 * cores, path, where
        ),
        max_concurrent_orchestrator_functions=_positive_int(
            section, "maxConcurrentOrchestratorFunctions", 10 * cores, path, where
        ),
        max_concurrent_entity_functions=_positive_int(
            section, "maxConcurrentEntityFunctions", 10 * cores, path, where
        ),
        store_inputs_in_orchestration_history=_bool(
            section, "storeInputsInOrchestrationHistory", False, path, where
        ),
        max_orchestration_actions=_positive_int(section, "maxOrchestrationActions", 100_000, path, where),
    )


def _service_bus_config(section: Mapping[str, Any], path: Path) -> ServiceBusConfig:
    cores = os.cpu_count() or 1
    where = "extensions.serviceBus."
    legacy = _section(section, "messageHandlerOptions", path, where)
    legacy_where = where + "messageHandlerOptions."
    legacy_calls = _positive_int(legacy, "maxConcurrentCalls", 16 * cores, path, legacy_where)
    legacy_complete = _bool(legacy, "autoComplete", True, path, legacy_where)
    legacy_renewal = _timespan(legacy, "maxAutoRenewDuration", timedelta(minutes=5), path, legacy_where)
    return ServiceBusConfig(
        max_concurrent_calls=_positive_int(section, "maxConcurrentCalls", legacy_calls, path, where),
        max_concurrent_sessions=_positive_int(section, "maxConcurrentSessions", 8 * cores, path, where),
        prefetch_count=_non_negative_int(section, "prefetchCount", 0, path, where),
        auto_complete_messages=_bool(section, "autoCompleteMessages", legacy_complete, path, where),
        max_auto_lock_renewal_duration=_timespan(
            section, "maxAutoLockRenewalDuration", legacy_renewal, path, where
        ),
        max_message_batch_size=_positive_int(section, "maxMessageBatchSize", 1000, path, where),
    )


def _function_timeout(value: object, path: Path) -> timedelta | None:
    if value is None:
        return None
    if value == "-1":
        return None  # "-1" means unbounded on plans that allow it.
    if isinstance(value, str):
        parsed = parse_timespan(value)
        if parsed is not None:
            return parsed
    raise AppLoadError(
        f'{path}: functionTimeout {json.dumps(value)} is not a timespan like "00:10:00"', file=path
    )


_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?")


def parse_timespan(text: str) -> timedelta | None:
    """Parse a .NET TimeSpan string `[d.]hh:mm:ss[.fffffff]`; None when it is not one."""
    match = _TIMESPAN.fullmatch(text.strip())
    if match is None:
        return None
    days, hours, minutes, seconds, fraction = match.groups()
    micro = int((fraction or "0").ljust(7, "0")[:6])
    return timedelta(
        days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(seconds), microseconds=micro
    )


def _resolve_app_setting(value: str, path: Path, env: Mapping[str, str]) -> str:
    # The host resolves "%Name%" from app settings (commonly used for hubName).
    match = re.fullmatch(r"%([^%]+)%", value)
    if match is None:
        return value
    name = match.group(1)
    if name not in env:
        raise AppLoadError(f"{path}: {value} refers to app setting {name!r}, which is not set", file=path)
    return env[name]


def _section(parent: Mapping[str, Any], key: str, path: Path, where: str = "") -> Mapping[str, Any]:
    # Configuration keys are case-insensitive in the Functions host.
    value = _get(parent, key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AppLoadError(f"{path}: {where}{key} must be an object", file=path)
    return value


def _get(section: Mapping[str, Any], key: str) -> Any:
    if key in section:
        return section[key]
    lowered = key.lower()
    for name, value in section.items():
        if name.lower() == lowered:
            return value
    return None


def _string(section: Mapping[str, Any], key: str, default: str, path: Path, where: str) -> str:
    value = _get(section, key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise AppLoadError(f"{path}: {where}{key} must be a string, not {json.dumps(value)}", file=path)
    return value


def _bool(section: Mapping[str, Any], key: str, default: bool, path: Path, where: str) -> bool:
    value = _get(section, key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise AppLoadError(f"{path}: {where}{key} must be true or false, not {json.dumps(value)}", file=path)


def _int(section: Mapping[str, Any], key: str, default: int, path: Path, where: str, minimum: int) -> int:
    value = _get(section, key)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AppLoadError(
            f"{path}: {where}{key} must be an integer >= {minimum}, not {json.dumps(value)}", file=path
        )
    return value


def _positive_int(section: Mapping[str, Any], key: str, default: int, path: Path, where: str) -> int:
    return _int(section, key, default, path, where, minimum=1)


def _non_negative_int(section: Mapping[str, Any], key: str, default: int, path: Path, where: str) -> int:
    return _int(section, key, default, path, where, minimum=0)


def _timespan(section: Mapping[str, Any], key: str, default: timedelta, path: Path, where: str) -> timedelta:
    value = _get(section, key)
    if value is None:
        return default
    parsed = parse_timespan(value) if isinstance(value, str) else None
    if parsed is None:
        raise AppLoadError(
            f'{path}: {where}{key} must be a timespan like "00:05:00", not {json.dumps(value)}', file=path
        )
    return parsed


def _read_json_object(path: Path, *, strict: bool = False) -> dict[str, Any]:
    """A JSON object from `path`; comments and a BOM are skipped (as Core Tools does) unless `strict`."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AppLoadError(f"{path}: cannot read: {exc}", file=path) from exc
    try:
        document = json.loads(strip_json_comments(text))
    except json.JSONDecodeError as exc:
        raise AppLoadError(
            f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})", file=path, line=exc.lineno
        ) from exc
    if strict:
        _refuse_what_the_durable_sdk_cannot_read(path, raw, text)
    if not isinstance(document, dict):
        raise AppLoadError(f"{path}: must contain a JSON object", file=path)
    return document


def _refuse_what_the_durable_sdk_cannot_read(path: Path, raw: bytes, text: str) -> None:
    # The Functions host tolerates comments and a BOM in host.json, but azure-functions-durable 1.x
    # json.loads()es ./host.json when it is imported (validate_extension_bundles), and the worker
    # imports it from the app folder: the app would then fail to start under `func start`.
    why = "azure-functions-durable reads host.json with json.loads when it is imported from the app folder"
    if raw.startswith(b"\xef\xbb\xbf"):
        raise AppLoadError(
            f"{path}: starts with a UTF-8 byte-order mark; {why} and fails on it: save it without BOM",
            file=path,
        )
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise AppLoadError(
            f"{path}:{exc.lineno}: contains comments; the Functions host accepts them, but {why} and fails "
            f"on them: remove the comments",
            file=path,
            line=exc.lineno,
        ) from exc


def strip_json_comments(text: str) -> str:
    """Blank out // and /* */ comments outside strings, keeping line numbers and columns intact."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_string = False
            i += 1
        elif ch == '"':
            in_string = True
            out.append(ch)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end == -1 else end + 2
            out.append("".join(c if c == "\n" else " " for c in text[i:end]))
            i = end
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------- import

# App folders put on sys.path and modules imported from them by earlier loads in this process, so
# a later load (another folder, or the same folder after an edit) never sees stale code.
_inserted_paths: list[str] = []
_app_module_names: set[str] = set()


def import_app_module(app_dir: Path) -> ModuleType:
    """Import `function_app.py` afresh under the module name `function_app`; errors become AppLoadError."""
    app_file = app_dir / APP_FILE_NAME
    _forget_previous_app()
    sys.path.insert(0, str(app_dir))
    _inserted_paths.append(str(app_dir))
    spec = importlib.util.spec_from_file_location(APP_MODULE_NAME, app_file)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"{app_file}: cannot be imported as a Python module", file=app_file)
    module = importlib.util.module_from_spec(spec)
    before = set(sys.modules)
    sys.modules[APP_MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(APP_MODULE_NAME, None)
        raise _import_error(exc, app_dir) from exc
    finally:
        _app_module_names.update(_modules_under(app_dir, set(sys.modules) - before))
    return module


def _forget_previous_app() -> None:
    while _inserted_paths:
        stale = _inserted_paths.pop()
        if stale in sys.path:
            sys.path.remove(stale)
    for name in _app_module_names | {APP_MODULE_NAME}:
        sys.modules.pop(name, None)
    _app_module_names.clear()
    importlib.invalidate_caches()


def _modules_under(folder: Path, names: set[str]) -> set[str]:
    found: set[str] = set()
    for name in names:
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None) if module is not None else None
        if file and _is_under(Path(file), folder):
            found.add(name)
    return found


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
    except (ValueError, OSError):
        return False
    return ".venv" not in path.parts and "site-packages" not in path.parts


def _import_error(exc: BaseException, app_dir: Path) -> AppLoadError:
    """One line: the user's file and line that failed, then the exception type and text."""
    kind = type(exc).__name__
    if isinstance(exc, SyntaxError) and exc.filename:
        file, line = Path(exc.filename), exc.lineno
        text = exc.msg
    else:
        file, line = _innermost_app_frame(exc, app_dir)
        text = str(exc)
    where = _display_path(file, app_dir)
    location = f"{where}:{line}" if line else where
    detail = f"{kind}: {text}" if text else kind
    return AppLoadError(f"{location}: {detail}", file=file, line=line)


def _innermost_app_frame(exc: BaseException, app_dir: Path) -> tuple[Path, int | None]:
    app_file = app_dir / APP_FILE_NAME
    best: tuple[Path, int | None] = (app_file, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        frame_file = Path(frame.filename)
        if _is_under(frame_file, app_dir):
            best = (frame_file, frame.lineno)
    return best


def _display_path(file: Path, app_dir: Path) -> str:
    try:
        return str(file.resolve().relative_to(app_dir))
    except (ValueError, OSError):
        return str(file)


# ---------------------------------------------------------------------------------------------- indexing


def find_function_app(module: ModuleType, app_file: Path) -> func.FunctionRegister:
    """The top-level FunctionApp/DFApp: attribute `app` if it is one, else the only one in the module."""
    named = getattr(module, "app", None)
    if isinstance(named, func.FunctionRegister):
        return named
    found: list[func.FunctionRegister] = []
    for value in vars(module).values():
        if isinstance(value, func.FunctionRegister) and all(value is not seen for seen in found):
            found.append(value)
    if not found:
        raise AppLoadError(
            f"{app_file}: no function app found: define a top-level `app = func.FunctionApp()` "
            f"(or `df.DFApp()`) and register functions on it",
            file=app_file,
        )
    if len(found) > 1:
        names = sorted(
            name for name, value in vars(module).items() if isinstance(value, func.FunctionRegister)
        )
        raise AppLoadError(
            f"{app_file}: more than one top-level function app ({', '.join(names)}); "
            f"the Python worker accepts only one: keep one and register the others as blueprints",
            file=app_file,
        )
    return found[0]


def index_functions(app: func.FunctionRegister, app_file: Path) -> list[func.Function]:
    """`app.get_functions()` as the worker calls it, with its validation errors made readable."""
    root = logging.getLogger()
    root.addFilter(_drop_auth_level_notice)
    try:
        functions = app.get_functions()
    except Exception as exc:  # The SDK validates with ValueError/TypeError; anything else is as fatal.
        raise AppLoadError(f"{app_file}: function indexing failed: {exc}", file=app_file) from exc
    finally:
        # get_functions() records names in functions_bindings and then rejects its own second call as
        # "duplicate"; clear it so the engine's registry can index the same app object again.
        app.functions_bindings = None
        root.removeFilter(_drop_auth_level_notice)
    if not functions:
        raise AppLoadError(f"{app_file}: the function app registers no functions", file=app_file)
    return functions


def _drop_auth_level_notice(record: logging.LogRecord) -> bool:
    # get_functions() warns on the root logger for every app without HTTP functions; it says nothing
    # actionable to a devhost user and would interleave with command output.
    return not str(record.msg).startswith("Auth level is not applied to non http function app")


def unload_app() -> None:
    """Take the last loaded app's folder off sys.path and its modules out of sys.modules."""
    _forget_previous_app()
