"""host.json: valid for the Functions host and the devhost, values consistent with the rest of the app."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from devhost.app import parse_timespan, read_host_config
from domain.settings import DEFAULT_GENERATION_DEADLINE_MINUTES
from tests.infra import bicep

REPO = Path(__file__).resolve().parents[2]
HOST_JSON = REPO / "host.json"
OPERATIONS = REPO / "docs" / "operations.md"

# Extension 5.x (bundle 4.x) names under extensions.serviceBus; 4.x names would be silently ignored.
SERVICE_BUS_KEYS = {
    "prefetchCount",
    "maxConcurrentCalls",
    "maxConcurrentSessions",
    "autoCompleteMessages",
    "maxAutoLockRenewalDuration",
    "maxMessageBatchSize",
    "sessionIdleTimeout",
    "clientRetryOptions",
    "transportType",
    "webProxy",
    "enableCrossEntityTransactions",
    "minMessageBatchSize",
    "maxBatchWaitTime",
}


def document() -> dict[str, Any]:
    raw = HOST_JSON.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), (
        "no BOM: azure-functions-durable json.loads host.json at import"
    )
    return json.loads(raw.decode("utf-8"))


def leaf_keys(value: Any) -> list[str]:
    """The names of every setting that holds a value (not a section), at any depth."""
    keys: list[str] = []
    for key, child in value.items():
        keys += leaf_keys(child) if isinstance(child, dict) else [key]
    return keys


def test_devhost_reads_it_with_our_values() -> None:
    config = read_host_config(HOST_JSON, environ={})
    assert config.durable_task.hub_name == "LessonOrchestrator"
    assert config.durable_task.max_concurrent_activity_functions == 100
    assert config.durable_task.max_concurrent_orchestrator_functions == 10
    assert config.service_bus.max_concurrent_calls == 16
    assert config.service_bus.prefetch_count == 0
    assert config.service_bus.auto_complete_messages is True
    assert config.service_bus.max_auto_lock_renewal_duration == timedelta(minutes=5)
    assert config.http_route_prefix == "api"


def test_schema_and_bundle() -> None:
    host = document()
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    }
    durable = host["extensions"]["durableTask"]
    # Extended sessions exist for .NET in-process only; the Python worker gains nothing from them.
    assert "extendedSessionsEnabled" not in durable
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,44}", durable["hubName"])
    assert set(host["extensions"]["serviceBus"]) <= SERVICE_BUS_KEYS


def test_timeouts_fit_the_module_deadline_and_the_queue_lock() -> None:
    host = document()
    timeout = parse_timespan(host["functionTimeout"])
    assert timeout is not None
    # No single activity may outlive the whole module's budget, and none should be cut before it.
    assert timeout == timedelta(minutes=DEFAULT_GENERATION_DEADLINE_MINUTES)
    renewal = parse_timespan(host["extensions"]["serviceBus"]["maxAutoLockRenewalDuration"])
    template = bicep.parse(REPO / "infra" / "main.bicep")
    lock = template.params["serviceBusLockDuration"].default[0].text
    match = re.fullmatch(r"PT(\d+)M", lock)
    assert match and renewal is not None and renewal > timedelta(minutes=int(match.group(1)))


def test_logging_keeps_requests_out_of_sampling_and_durable_noise_down() -> None:
    logging = document()["logging"]
    excluded = logging["applicationInsights"]["samplingSettings"]["excludedTypes"].split(";")
    assert "Request" in excluded
    levels = logging["logLevel"]
    assert levels["Host.Results"] == "Information"  # one Request per execution: the success-rate source
    assert levels["Function"] == "Information"
    assert levels["DurableTask.Core"] == "Warning" and levels["DurableTask.AzureStorage"] == "Warning"


def test_operations_doc_explains_every_value() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text.split("## host.json", 1)[1].split("\n## ", 1)[0]
    missing = [key for key in leaf_keys(document()) if f"`{key}`" not in section]
    assert not missing, f"docs/operations.md (## host.json) does not explain {missing}"
