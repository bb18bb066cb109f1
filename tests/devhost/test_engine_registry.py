"""Indexing an app like the Python worker: durable names, binding parameters, trigger kinds."""

from __future__ import annotations

from devhost.registry import FunctionRegistry
from tests.devhost.apps import core_triggers_app


def test_functions_are_grouped_by_trigger_with_their_parameters() -> None:
    registry = FunctionRegistry.from_app(core_triggers_app.app)
    # Durable names come from the trigger's name property when set, else the function name.
    assert list(registry.orchestrators) == ["NamedOrchestrator"]
    assert registry.orchestrators["NamedOrchestrator"].context_name == "ctx"
    assert registry.orchestrators["NamedOrchestrator"].entry.function_name == "orchestrator_function"
    assert sorted(registry.activities) == ["NamedActivity", "plain_activity"]
    named = registry.activities["NamedActivity"]
    assert (named.input_name, named.is_async) == ("payload", True)
    plain = registry.activities["plain_activity"]
    assert (plain.input_name, plain.is_async) == ("city", False)
    assert list(registry.entities) == ["Counter"]
    http = registry.http["http_start"]
    assert http.client_name == "starter" and http.is_async
    assert http.trigger == {"direction": 0, "type": "httpTrigger", "name": "req", "methods": ["POST"],
                            "authLevel": "anonymous", "route": "orchestrators/{functionName}"}
    bus = registry.service_bus["on_message"]
    assert bus.client_name == "client" and bus.trigger["queueName"] == "jobs"
    assert bus.param_names == ("msg", "client")
    assert list(registry.other) == ["every_five_minutes"]
    assert registry.other["every_five_minutes"].trigger_type == "timerTrigger"
    assert len(registry.all_functions()) == 7


def test_lookups_ignore_case_and_indexing_twice_works() -> None:
    first = FunctionRegistry.from_app(core_triggers_app.app)
    second = FunctionRegistry.from_app(core_triggers_app.app)  # get_functions() may only run once per app
    assert sorted(first.activities) == sorted(second.activities)
    assert second.find_activity("namedactivity") is not None
    assert second.find_orchestrator("NAMEDORCHESTRATOR") is not None
    assert second.find_orchestrator("missing") is None
