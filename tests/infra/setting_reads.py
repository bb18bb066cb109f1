"""Which app settings the code reads, found by reading the code (AST), not by running it.

A *read* is a lookup of a key in a settings mapping: ``env.get(K)``, ``values[K]``, ``K in values``,
``os.environ[K]``, ``os.getenv(K)``, where the mapping is a name like ``env``/``values``/``environ`` — or a
call of a *reader function*: a function (at any depth) that does such a lookup with one of its own
parameters as the key (``_value(env, "AI_PROVIDERS")``, ``value("GITHUB_TOKEN")``). Readers of readers
count too (``_number`` calls ``_value``), found by iterating to a fixed point.

Keys are resolved to text where the code makes that possible: string literals, module constants,
f-strings and ``+`` of those, and loop variables over a module-level dict/tuple of strings. What stays
unknown (``f"{prefix}_API_KEY"`` with a runtime prefix) becomes a pattern with ``*`` in its place.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAPPING_NAMES = frozenset({"env", "environ", "values", "settings_env", "app_settings"})
WILDCARD = "*"


@dataclass(frozen=True)
class SettingRead:
    key: str  # a setting name, or a pattern containing WILDCARD
    path: Path
    line: int

    @property
    def is_pattern(self) -> bool:
        return WILDCARD in self.key


def collect(paths: Iterable[Path]) -> list[SettingRead]:
    reads: list[SettingRead] = []
    for path in paths:
        reads.extend(_ModuleScanner(path).scan())
    return reads


class _ModuleScanner:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        self.constants = _module_constants(self.tree)
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node

    def scan(self) -> list[SettingRead]:
        readers = self._reader_functions()
        reads: list[SettingRead] = []
        for node in ast.walk(self.tree):
            for key in self._lookup_keys(node, readers):
                for text in self._resolve(key):
                    if text.replace(WILDCARD, ""):  # a pure wildcard says nothing
                        reads.append(SettingRead(text, self.path, getattr(node, "lineno", 0)))
        return reads

    # -------------------------------------------------------------------------------- lookups

    def _lookup_keys(self, node: ast.AST, readers: dict[str, int]) -> list[ast.expr]:
        if isinstance(node, ast.Call):
            func = node.func
            is_get = isinstance(func, ast.Attribute) and func.attr in ("get", "getenv") and node.args
            if is_get and isinstance(func, ast.Attribute):
                on_os = func.attr == "getenv" and _is_name(func.value, "os")
                if _is_mapping(func.value) or on_os:
                    return [node.args[0]]
            name = func.id if isinstance(func, ast.Name) else None
            if name in readers and len(node.args) > readers[name]:
                return [node.args[readers[name]]]
        if isinstance(node, ast.Subscript) and _is_mapping(node.value) and isinstance(node.ctx, ast.Load):
            return [node.slice]
        if (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], ast.In | ast.NotIn)
            and _is_mapping(node.comparators[0])
        ):
            return [node.left]
        return []

    def _reader_functions(self) -> dict[str, int]:
        """Function name -> index of the positional parameter used as a settings key."""
        readers: dict[str, int] = {}
        functions = [n for n in ast.walk(self.tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        changed = True
        while changed:
            changed = False
            for function in functions:
                if function.name in readers:
                    continue
                params = [a.arg for a in function.args.args]
                for node in ast.walk(function):
                    for key in self._lookup_keys(node, readers):
                        if isinstance(key, ast.Name) and key.id in params:
                            readers[function.name] = params.index(key.id)
                            changed = True
                            break
                    if function.name in readers:
                        break
        return readers

    # -------------------------------------------------------------------------------- resolution

    def _resolve(self, node: ast.AST, depth: int = 0) -> list[str]:
        if depth > 8:
            return [WILDCARD]
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.Name):
            constant = self.constants.get(node.id)
            if isinstance(constant, str):
                return [constant]
            loop_values = self._loop_values(node)
            if loop_values is not None:
                return loop_values
            assigned = self._local_assignments(node)
            if assigned:
                return sorted({text for value in assigned for text in self._resolve(value, depth + 1)})
            if self._is_parameter(node):
                return []  # the caller's argument is resolved at the call site instead
            return [WILDCARD]
        if isinstance(node, ast.JoinedStr):
            return _combine(
                [
                    self._resolve(v.value if isinstance(v, ast.FormattedValue) else v, depth + 1)
                    for v in node.values
                ]
            )
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return _combine([self._resolve(node.left, depth + 1), self._resolve(node.right, depth + 1)])
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and isinstance(self.constants.get(node.func.value.id), dict)
        ):
            # CONSTANT_DICT.get(...): one of its values
            table = self.constants[node.func.value.id]
            assert isinstance(table, dict)
            return sorted(v for v in table.values() if isinstance(v, str))
        return [WILDCARD]

    def _local_assignments(self, name: ast.Name) -> list[ast.expr]:
        """Values assigned to `name` by plain `name = ...` statements in the enclosing function."""
        function = self._enclosing_function(name)
        if function is None:
            return []
        return [
            statement.value
            for statement in ast.walk(function)
            if isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
            and statement.targets[0].id == name.id
        ]

    def _enclosing_function(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        current: ast.AST | None = node
        while current is not None:
            current = self.parents.get(current)
            if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef):
                return current
        return None

    def _loop_values(self, name: ast.Name) -> list[str] | None:
        """Values of `name` when it is the target of an enclosing `for` over a module-level constant."""
        node: ast.AST | None = name
        while node is not None:
            node = self.parents.get(node)
            loops: list[ast.For | ast.comprehension] = []
            if isinstance(node, ast.For):
                loops = [node]
            elif isinstance(node, ast.GeneratorExp | ast.ListComp | ast.SetComp | ast.DictComp):
                loops = list(node.generators)
            for loop in loops:
                values = self._iterated_values(loop.iter, loop.target, name.id)
                if values is not None:
                    return values
        return None

    def _iterated_values(self, iterable: ast.expr, target: ast.expr, wanted: str) -> list[str] | None:
        container: object = None
        items = False
        if isinstance(iterable, ast.Name):
            container = self.constants.get(iterable.id)
        elif (
            isinstance(iterable, ast.Call)
            and isinstance(iterable.func, ast.Attribute)
            and isinstance(iterable.func.value, ast.Name)
        ):
            container = self.constants.get(iterable.func.value.id)
            items = iterable.func.attr == "items"
            if iterable.func.attr not in ("items", "keys", "values"):
                return None
            if iterable.func.attr == "values" and isinstance(container, dict):
                container = tuple(container.values())
        named = isinstance(target, ast.Name) and target.id == wanted
        if named and not items and isinstance(container, dict | tuple | list):
            return [v for v in container if isinstance(v, str)]
        first = target.elts[0] if isinstance(target, ast.Tuple) and target.elts else None
        if items and isinstance(container, dict) and isinstance(first, ast.Name) and first.id == wanted:
            return [k for k in container if isinstance(k, str)]
        return None

    def _is_parameter(self, name: ast.Name) -> bool:
        node: ast.AST | None = name
        while node is not None:
            node = self.parents.get(node)
            is_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            if is_function and name.id in [a.arg for a in node.args.args + node.args.kwonlyargs]:
                return True
        return False


def _module_constants(tree: ast.Module) -> dict[str, object]:
    constants: dict[str, object] = {}
    for statement in tree.body:
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        if not isinstance(target, ast.Name) or value is None:
            continue
        if isinstance(value, ast.JoinedStr):
            parts = [
                constants.get(v.value.id)
                if isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name)
                else (v.value if isinstance(v, ast.Constant) else None)
                for v in value.values
            ]
            if all(isinstance(p, str) for p in parts):
                constants[target.id] = "".join(str(p) for p in parts)
            continue
        try:
            constants[target.id] = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError):
            continue
    return constants


def _combine(parts: list[list[str]]) -> list[str]:
    results = [""]
    for options in parts:
        if not options:
            return []
        results = [prefix + option for prefix in results for option in options]
    # "**" and "*" mean the same: one unknown run of characters.
    collapsed = []
    for result in results:
        while WILDCARD * 2 in result:
            result = result.replace(WILDCARD * 2, WILDCARD)
        collapsed.append(result)
    return sorted(set(collapsed))


def _is_mapping(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in MAPPING_NAMES
    return isinstance(node, ast.Attribute) and node.attr == "environ" and _is_name(node.value, "os")


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name
