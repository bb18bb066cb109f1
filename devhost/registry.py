"""Index a Durable Functions app (anything with ``get_functions()``) like the Python worker does."""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol


class FunctionApp(Protocol):
    def get_functions(self) -> list[Any]: ...


def _plain(value: Any) -> Any:
    """Binding dict values as plain JSON-ish data (enums → their value, lists recursively)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# azure-functions' get_functions() validates names against state it keeps, so a second call on the
# same app raises "does not have a unique function name"; the worker indexes once, and so do we.
_INDEXED: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()


def indexed_functions(app: FunctionApp) -> list[Any]:
    """``app.get_functions()``, called once per app object."""
    try:
        cached = _INDEXED.get(app)
    except TypeError:  # not weak-referenceable: index every time
        return list(app.get_functions())
    if cached is None:
        cached = list(app.get_functions())
        _INDEXED[app] = cached
    return cached


def _is_async(fn: Callable[..., Any]) -> bool:
    target = inspect.unwrap(fn)
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(fn)


@dataclass(frozen=True)
class FunctionEntry:
    """One indexed function: its Functions name, bindings (plain dicts), and the callable."""

    function_name: str
    bindings: tuple[dict[str, Any], ...]
    user_function: Callable[..., Any]
    is_async: bool

    @property
    def trigger(self) -> dict[str, Any]:
        for binding in self.bindings:
            if str(binding.get("type", "")).endswith("Trigger"):
                return binding
        return self.bindings[0] if self.bindings else {}

    @property
    def trigger_type(self) -> str:
        return str(self.trigger.get("type", ""))

    @property
    def client_name(self) -> str | None:
        """Parameter name of the ``durableClient`` input binding, if the function has one."""
        for binding in self.bindings:
            if binding.get("type") == "durableClient":
                return str(binding["name"])
        return None

    @property
    def param_names(self) -> tuple[str, ...]:
        try:
            return tuple(inspect.signature(self.user_function).parameters)
        except (TypeError, ValueError):
            return ()


@dataclass(frozen=True)
class Orchestrator:
    name: str
    entry: FunctionEntry
    context_name: str

    @property
    def handle(self) -> Callable[[str], str]:
        """The SDK's ``Orchestrator.create`` handle: request JSON string in, reply JSON string out."""
        return self.entry.user_function


@dataclass(frozen=True)
class Activity:
    name: str
    entry: FunctionEntry
    input_name: str

    @property
    def function(self) -> Callable[..., Any]:
        return self.entry.user_function

    @property
    def is_async(self) -> bool:
        return self.entry.is_async


@dataclass(frozen=True)
class Entity:
    name: str
    entry: FunctionEntry
    context_name: str


@dataclass
class FunctionRegistry:
    """Functions of an app grouped by trigger kind; durable names as the extension registers them."""

    orchestrators: dict[str, Orchestrator] = field(default_factory=dict)
    activities: dict[str, Activity] = field(default_factory=dict)
    entities: dict[str, Entity] = field(default_factory=dict)
    http: dict[str, FunctionEntry] = field(default_factory=dict)
    service_bus: dict[str, FunctionEntry] = field(default_factory=dict)
    other: dict[str, FunctionEntry] = field(default_factory=dict)

    @classmethod
    def from_app(cls, app: FunctionApp) -> FunctionRegistry:
        return cls.from_functions(indexed_functions(app))

    @classmethod
    def from_functions(cls, functions: Iterable[Any]) -> FunctionRegistry:
        registry = cls()
        for function in functions:
            registry.add(function)
        return registry

    def add(self, function: Any) -> None:
        user_function = function.get_user_function()
        bindings = tuple(_plain(b.get_dict_repr()) for b in function.get_bindings())
        entry = FunctionEntry(function.get_function_name(), bindings, user_function, _is_async(user_function))
        trigger = entry.trigger
        kind = entry.trigger_type
        # The extension registers durable functions under the trigger's name property when set.
        if kind == "orchestrationTrigger":
            name = str(trigger.get("orchestration") or entry.function_name)
            self._unique(name, self.orchestrators, "orchestrator")
            self.orchestrators[name] = Orchestrator(name, entry, str(trigger["name"]))
        elif kind == "activityTrigger":
            name = str(trigger.get("activity") or entry.function_name)
            self._unique(name, self.activities, "activity")
            self.activities[name] = Activity(name, entry, str(trigger["name"]))
        elif kind == "entityTrigger":
            name = str(trigger.get("entityName") or entry.function_name)
            self.entities[name] = Entity(name, entry, str(trigger["name"]))
        elif kind == "httpTrigger":
            self.http[entry.function_name] = entry
        elif kind == "serviceBusTrigger":
            self.service_bus[entry.function_name] = entry
        else:
            self.other[entry.function_name] = entry

    @staticmethod
    def _unique(name: str, existing: dict[str, Any], kind: str) -> None:
        if name in existing:
            raise ValueError(f"Two {kind} functions are named '{name}'.")

    def find_orchestrator(self, name: str) -> Orchestrator | None:
        """Lookup by name; the host matches function names case-insensitively."""
        found = self.orchestrators.get(name)
        if found is None:
            found = next((o for n, o in self.orchestrators.items() if n.lower() == name.lower()), None)
        return found

    def find_activity(self, name: str) -> Activity | None:
        found = self.activities.get(name)
        if found is None:
            found = next((a for n, a in self.activities.items() if n.lower() == name.lower()), None)
        return found

    def all_functions(self) -> list[FunctionEntry]:
        entries = [o.entry for o in self.orchestrators.values()] + [a.entry for a in self.activities.values()]
        entries += [e.entry for e in self.entities.values()]
        return (
            entries + list(self.http.values()) + list(self.service_bus.values()) + list(self.other.values())
        )
