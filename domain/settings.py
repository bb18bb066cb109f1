"""The app settings of architecture.md §3, read and validated in one place.

Settings come from a Mapping (the process environment in Azure, where the Functions host also loads
`local.settings.json` locally); the operator CLI adds `local.settings.json` `Values` as a fallback.
Validation collects every problem and reports one line per setting, naming it and where to set it,
because the old system's worst failures were silent defaults (a localhost URL in Azure) discovered
minutes into a run. Secret values never appear in messages or reprs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

LOCAL_SETTINGS_FILE = "local.settings.json"
WHERE_TO_SET = (
    "set it in the Function App's Application settings in Azure, or in local.settings.json Values locally"
)

DEFAULT_RESEARCH_CACHE_TTL_HOURS = 24.0
DEFAULT_GENERATION_DEADLINE_MINUTES = 30.0
DEFAULT_DB_PORT = 5432

SERVICE_BUS_SETTING = "AzureServiceBusConnectionString"
SERVICE_BUS_NAMESPACE_SETTING = f"{SERVICE_BUS_SETTING}__fullyQualifiedNamespace"
ENVIRONMENT_PREFIXES = {"production": "PROD_DB_", "development": "DEV_DB_"}
DB_PARTS = ("HOST", "NAME", "USER", "PASSWORD")

# Azure sets these in every Function App; a localhost database there can only be a mistake.
AZURE_MARKERS = ("WEBSITE_SITE_NAME", "WEBSITE_INSTANCE_ID")
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


class Need(Enum):
    """What a caller requires; optional settings are still validated when present."""

    DATABASE = "database"
    SERVICE_BUS = "service_bus"


class SettingsError(ValueError):
    """Every problem found, one line each; str() joins them with newlines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class ServiceBusConnection:
    """Either a connection string (secret) or an identity-based fully qualified namespace."""

    connection_string: str | None = field(default=None, repr=False)
    fully_qualified_namespace: str | None = None

    @property
    def kind(self) -> str:
        return "connection string" if self.connection_string else "managed identity"


@dataclass(frozen=True)
class Settings:
    database_url: str | None = field(default=None, repr=False)
    # Which settings the DSN came from (`DATABASE_URL` or `PROD_DB_*`), for messages.
    database_source: str | None = None
    research_cache_ttl_hours: float = DEFAULT_RESEARCH_CACHE_TTL_HOURS
    generation_deadline_minutes: float = DEFAULT_GENERATION_DEADLINE_MINUTES
    completion_webhook_url: str | None = None
    completion_webhook_secret: str | None = field(default=None, repr=False)
    service_bus: ServiceBusConnection | None = None

    @property
    def database_display(self) -> str:
        """host:port/database without user or password: safe to print."""
        return describe_dsn(self.database_url) if self.database_url else "not configured"


def describe_dsn(dsn: str) -> str:
    """A DSN reduced to host:port/database (never the user or password)."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = parts.hostname or (query.get("host") or ["(unix socket)"])[0]
    port = parts.port or (query.get("port") or [DEFAULT_DB_PORT])[0]
    database = parts.path.lstrip("/") or "(default database)"
    return f"{host}:{port}/{database}"


def settings_environment(env: Mapping[str, str] | None = None, app_dir: Path | None = None) -> dict[str, str]:
    """The environment, with `local.settings.json` `Values` filling only names the environment lacks.

    Raises SettingsError when the file exists but cannot be used (a silent fallback would hide it).
    """
    env = os.environ if env is None else env
    app_dir = Path.cwd() if app_dir is None else app_dir
    merged = dict(read_local_settings(app_dir / LOCAL_SETTINGS_FILE))
    merged.update({name: value for name, value in env.items() if value is not None})
    return merged


def read_local_settings(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError([f"{path}: cannot be read ({type(exc).__name__})"]) from None
    except json.JSONDecodeError as exc:
        raise SettingsError([f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})"]) from None
    values = data.get("Values", {}) if isinstance(data, dict) else None
    if not isinstance(values, dict):
        raise SettingsError([f'{path}: "Values" must be an object of NAME: value pairs'])
    # The Functions host passes non-string JSON values through as text; do the same.
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in values.items() if v is not None}


def load_settings(
    env: Mapping[str, str] | None = None,
    app_dir: Path | None = None,
    *,
    needs: Collection[Need] = (Need.DATABASE,),
) -> Settings:
    """Settings from the environment then `app_dir/local.settings.json`; raises SettingsError listing all
    problems. `parse_settings` is the same without the file fallback (what the Function App uses)."""
    return parse_settings(settings_environment(env, app_dir), needs=needs)


def parse_settings(values: Mapping[str, str], *, needs: Collection[Need] = (Need.DATABASE,)) -> Settings:
    problems: list[str] = []
    values = {k: v.strip() for k, v in values.items() if isinstance(v, str) and v.strip()}
    in_azure = any(marker in values for marker in AZURE_MARKERS)

    database_url, database_source = _database(values, Need.DATABASE in needs, in_azure, problems)
    ttl = _positive_number(values, "RESEARCH_CACHE_TTL_HOURS", DEFAULT_RESEARCH_CACHE_TTL_HOURS, problems)
    deadline = _positive_number(
        values, "GENERATION_DEADLINE_MINUTES", DEFAULT_GENERATION_DEADLINE_MINUTES, problems
    )
    webhook_url, webhook_secret = _webhook(values, in_azure, problems)
    service_bus = _service_bus(values, Need.SERVICE_BUS in needs, problems)

    if problems:
        raise SettingsError(problems)
    return Settings(
        database_url=database_url,
        database_source=database_source,
        research_cache_ttl_hours=ttl,
        generation_deadline_minutes=deadline,
        completion_webhook_url=webhook_url,
        completion_webhook_secret=webhook_secret,
        service_bus=service_bus,
    )


def _missing(name: str, meaning: str) -> str:
    return f"{name} is missing ({meaning}): {WHERE_TO_SET}"


def _invalid(name: str, why: str) -> str:
    return f"{name} is invalid ({why}): {WHERE_TO_SET}"


def _database(
    values: dict[str, str], required: bool, in_azure: bool, problems: list[str]
) -> tuple[str | None, str | None]:
    if "DATABASE_URL" in values:
        dsn = values["DATABASE_URL"]
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgres", "postgresql"):
            # Never echo the value: it normally carries the password.
            problems.append(
                _invalid("DATABASE_URL", "expected postgresql://user:password@host:port/database")
            )
            return None, None
        _reject_local_host(parts.hostname, "DATABASE_URL", in_azure, problems)
        return dsn, "DATABASE_URL"

    environment = values.get("ENVIRONMENT")
    if environment is None:
        if required:
            problems.append(
                "DATABASE_URL is missing (PostgreSQL connection), and so is ENVIRONMENT "
                "(production|development, selecting PROD_DB_* or DEV_DB_*): set DATABASE_URL, or ENVIRONMENT "
                f"with its *_DB_HOST/NAME/USER/PASSWORD[/PORT]; {WHERE_TO_SET}"
            )
        return None, None
    prefix = ENVIRONMENT_PREFIXES.get(environment.lower())
    if prefix is None:
        problems.append(_invalid("ENVIRONMENT", f"{environment!r}; expected production or development"))
        return None, None

    before = len(problems)
    parts_found: dict[str, str] = {}
    for part in DB_PARTS:
        name = prefix + part
        if name in values:
            parts_found[part] = values[name]
        elif required or any(prefix + p in values for p in DB_PARTS):
            meaning = f"PostgreSQL {part.lower()} for ENVIRONMENT={environment.lower()}"
            problems.append(_missing(name, meaning))
    port = DEFAULT_DB_PORT
    port_name = prefix + "PORT"
    if port_name in values:
        raw = values[port_name]
        if raw.isdigit() and 0 < int(raw) < 65536:
            port = int(raw)
        else:
            problems.append(_invalid(port_name, f"{raw!r}; expected a port number such as 5432"))
    if len(problems) > before or len(parts_found) < len(DB_PARTS):
        return None, None
    _reject_local_host(parts_found["HOST"], prefix + "HOST", in_azure, problems)
    return assemble_dsn(
        host=parts_found["HOST"],
        port=port,
        database=parts_found["NAME"],
        user=parts_found["USER"],
        password=parts_found["PASSWORD"],
    ), f"{prefix}*"


def assemble_dsn(*, host: str, port: int, database: str, user: str, password: str) -> str:
    """postgresql:// DSN with every part percent-encoded (passwords often contain @ : / #).

    A host starting with "/" is a Unix socket directory (local development), passed as a parameter."""
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    if host.startswith("/"):
        socket = urlencode({"host": host, "port": port})
        return f"postgresql://{credentials}@/{quote(database, safe='')}?{socket}"
    netloc_host = f"[{host}]" if ":" in host else host  # IPv6 literal
    return f"postgresql://{credentials}@{netloc_host}:{port}/{quote(database, safe='')}"


def _reject_local_host(host: str | None, name: str, in_azure: bool, problems: list[str]) -> None:
    if in_azure and host and host.lower() in LOCAL_HOSTS:
        problems.append(_invalid(name, f"points at {host}, which a Function App in Azure cannot reach"))


def _positive_number(values: dict[str, str], name: str, default: float, problems: list[str]) -> float:
    raw = values.get(name)
    if raw is None:
        return default
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        problems.append(_invalid(name, f"{raw!r}; expected a positive number"))
        return default
    return number


def _webhook(values: dict[str, str], in_azure: bool, problems: list[str]) -> tuple[str | None, str | None]:
    url = values.get("COMPLETION_WEBHOOK_URL")
    secret = values.get("COMPLETION_WEBHOOK_SECRET")
    if url is None:
        if secret is not None:
            problems.append(
                _missing("COMPLETION_WEBHOOK_URL", "COMPLETION_WEBHOOK_SECRET is set, so one was intended")
            )
        return None, None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(_invalid("COMPLETION_WEBHOOK_URL", "expected an http(s) URL"))
        return None, None
    _reject_local_host(parts.hostname, "COMPLETION_WEBHOOK_URL", in_azure, problems)
    if secret is None:
        problems.append(_missing("COMPLETION_WEBHOOK_SECRET", "the key that signs webhook notifications"))
        return None, None
    return url, secret


def _service_bus(values: dict[str, str], required: bool, problems: list[str]) -> ServiceBusConnection | None:
    connection_string = values.get(SERVICE_BUS_SETTING)
    namespace = values.get(SERVICE_BUS_NAMESPACE_SETTING)
    if connection_string is not None:
        fields = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
        if "Endpoint" not in fields:
            problems.append(
                _invalid(
                    SERVICE_BUS_SETTING,
                    "expected Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...",
                )
            )
            return None
        return ServiceBusConnection(connection_string=connection_string)
    if namespace is not None:
        if "." not in namespace or "/" in namespace:
            why = f"{namespace!r}; expected NAME.servicebus.windows.net"
            problems.append(_invalid(SERVICE_BUS_NAMESPACE_SETTING, why))
            return None
        return ServiceBusConnection(fully_qualified_namespace=namespace)
    if required:
        problems.append(
            _missing(
                SERVICE_BUS_SETTING,
                f"Service Bus connection string, or {SERVICE_BUS_NAMESPACE_SETTING} for managed identity",
            )
        )
    return None
