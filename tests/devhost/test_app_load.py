"""devhost.app: loading a function app folder like Core Tools + the Python worker."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.app import AppLoadError, load_app, unload_app

APPS = Path(__file__).parent / "apps"
ORDERS_APP = APPS / "app_orders"
MINIMAL_HOST = {"version": "2.0"}


@pytest.fixture(autouse=True)
def isolated_process_state() -> Iterator[None]:
    """load_app writes os.environ and sys.path on purpose (the app reads them); undo it per test."""
    saved_env = dict(os.environ)
    saved_path = list(sys.path)
    try:
        yield
    finally:
        unload_app()
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path


def write_app(
    folder: Path,
    code: str,
    *,
    host: dict | str | None = None,
    settings: dict | None = None,
    extra_files: dict[str, str] | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function_app.py").write_text(textwrap.dedent(code), encoding="utf-8")
    host_doc = MINIMAL_HOST if host is None else host
    (folder / "host.json").write_text(
        host_doc if isinstance(host_doc, str) else json.dumps(host_doc), encoding="utf-8"
    )
    if settings is not None:
        (folder / "local.settings.json").write_text(json.dumps(settings), encoding="utf-8")
    for name, text in (extra_files or {}).items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


ONE_ACTIVITY_APP = """\
import azure.durable_functions as df

app = df.DFApp()


@app.activity_trigger(input_name="x")
def echo(x):
    return x
"""


def bindings_by_function(loaded) -> dict[str, set[str]]:
    return {f.get_function_name(): {b.type for b in f.get_bindings()} for f in loaded.functions}


def test_realistic_app_is_indexed_with_every_trigger_kind() -> None:
    loaded = load_app(ORDERS_APP)

    assert bindings_by_function(loaded) == {
        "start_order": {"httpTrigger", "http", "durableClient"},
        "order_from_queue": {"serviceBusTrigger", "durableClient"},
        "process_order": {"orchestrationTrigger"},
        "PriceLine": {"activityTrigger"},
        "Total": {"activityTrigger"},
    }
    orchestrator = next(f for f in loaded.functions if f.get_function_name() == "process_order")
    # The durable name comes from the trigger binding; the function name stays the Python name.
    assert orchestrator.get_trigger().orchestration == "ProcessOrder"
    assert loaded.app_dir == ORDERS_APP.resolve()
    assert loaded.module.__name__ == "function_app"
    assert loaded.module.app is loaded.app


def test_activity_from_loaded_app_runs_with_its_sibling_module() -> None:
    loaded = load_app(ORDERS_APP)
    price_line = next(f for f in loaded.functions if f.get_function_name() == "PriceLine")

    assert price_line.get_user_function()(line={"qty": 3, "unit_price": 2.5}) == 7.5


def test_functions_can_be_indexed_again_after_load() -> None:
    # The engine's registry calls get_functions() on the same app object after load_app did.
    loaded = load_app(ORDERS_APP)

    again = loaded.app.get_functions()

    assert sorted(f.get_function_name() for f in again) == sorted(
        f.get_function_name() for f in loaded.functions
    )


def test_host_json_values_are_read_with_app_setting_references() -> None:
    loaded = load_app(ORDERS_APP)
    config = loaded.host_config

    assert loaded.hub_name == "OrdersHub"  # "%ORDERS_HUB%" resolved from local.settings.json
    assert config.durable_task.max_concurrent_activity_functions == 7
    assert config.durable_task.max_concurrent_orchestrator_functions == 3
    assert config.service_bus.max_concurrent_calls == 4
    assert config.service_bus.auto_complete_messages is False
    assert config.function_timeout is not None
    assert config.function_timeout.total_seconds() == 600
    assert config.raw["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"


def test_host_json_defaults_match_the_functions_host(tmp_path: Path) -> None:
    cores = os.cpu_count() or 1
    loaded = load_app(write_app(tmp_path / "app", ONE_ACTIVITY_APP))
    config = loaded.host_config

    assert config.durable_task.hub_name == "TestHubName"
    assert config.durable_task.max_concurrent_activity_functions == 10 * cores
    assert config.durable_task.max_concurrent_orchestrator_functions == 10 * cores
    assert config.durable_task.store_inputs_in_orchestration_history is False
    assert config.durable_task.max_orchestration_actions == 100_000
    assert config.service_bus.max_concurrent_calls == 16 * cores
    assert config.service_bus.auto_complete_messages is True
    assert config.service_bus.max_auto_lock_renewal_duration.total_seconds() == 300
    assert config.http_route_prefix == "api"
    assert config.function_timeout is None


def test_legacy_service_bus_message_handler_options_are_honoured(tmp_path: Path) -> None:
    host = {
        "version": "2.0",
        "extensions": {
            "serviceBus": {
                "messageHandlerOptions": {
                    "maxConcurrentCalls": 2,
                    "autoComplete": False,
                    "maxAutoRenewDuration": "00:01:30",
                }
            }
        },
    }
    config = load_app(write_app(tmp_path / "app", ONE_ACTIVITY_APP, host=host)).host_config

    assert config.service_bus.max_concurrent_calls == 2
    assert config.service_bus.auto_complete_messages is False
    assert config.service_bus.max_auto_lock_renewal_duration.total_seconds() == 90


def test_local_settings_values_reach_the_environment_before_import() -> None:
    os.environ.pop("ORDERS_CURRENCY", None)
    loaded = load_app(ORDERS_APP)

    assert loaded.module.CURRENCY == "EUR"
    # Functions setting names are mixed case by convention; the lookup is exact.
    assert os.environ["ServiceBusConnection"].startswith("Endpoint=sb://localhost/")  # noqa: SIM112
    assert os.environ["ORDERS_RETRIES"] == "3"  # a JSON number arrives as its text
    assert "ORDERS_CURRENCY" in loaded.settings_applied
    assert loaded.settings.local_http_port == 7072


def test_real_environment_wins_over_local_settings() -> None:
    os.environ["ORDERS_CURRENCY"] = "USD"
    os.environ["ORDERS_HUB"] = "RealHub"

    loaded = load_app(ORDERS_APP)

    assert loaded.module.CURRENCY == "USD"
    assert os.environ["ORDERS_CURRENCY"] == "USD"
    assert loaded.hub_name == "RealHub"
    assert set(loaded.settings.skipped) >= {"ORDERS_CURRENCY", "ORDERS_HUB"}
    assert "ORDERS_CURRENCY" not in loaded.settings_applied


def test_encrypted_local_settings_are_refused(tmp_path: Path) -> None:
    app_dir = write_app(tmp_path / "app", ONE_ACTIVITY_APP, settings={"IsEncrypted": True, "Values": {}})

    with pytest.raises(AppLoadError, match="IsEncrypted is true"):
        load_app(app_dir)


def test_non_string_setting_value_is_refused_by_name(tmp_path: Path) -> None:
    app_dir = write_app(tmp_path / "app", ONE_ACTIVITY_APP, settings={"Values": {"NESTED": {"a": 1}}})

    with pytest.raises(AppLoadError, match="setting 'NESTED' must be a string"):
        load_app(app_dir)


def test_unresolved_hub_name_setting_is_named(tmp_path: Path) -> None:
    host = {"version": "2.0", "extensions": {"durableTask": {"hubName": "%NO_SUCH_HUB_SETTING%"}}}
    app_dir = write_app(tmp_path / "app", ONE_ACTIVITY_APP, host=host)

    with pytest.raises(AppLoadError, match="'NO_SUCH_HUB_SETTING', which is not set"):
        load_app(app_dir)


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ('{"version": "2.0",\n  "extensions": {,}}', r"host\.json:2: invalid JSON"),
        ("[]", "must contain a JSON object"),
        ({"extensions": {}}, r'"version" must be "2\.0" \(found null\)'),
        (
            {"version": "2.0", "extensions": {"durableTask": {"maxConcurrentActivityFunctions": 0}}},
            r"extensions\.durableTask\.maxConcurrentActivityFunctions must be an integer >= 1, not 0",
        ),
        ({"version": "2.0", "extensions": {"durableTask": {"hubName": "my-hub"}}}, "task hub name 'my-hub'"),
        ({"version": "2.0", "extensions": {"durableTask": {"hubName": "H" * 46}}}, "3 to 45 characters"),
        ({"version": "2.0", "functionTimeout": "ten minutes"}, "functionTimeout"),
    ],
)
def test_bad_host_json_gives_a_clear_error(tmp_path: Path, host: dict | str, message: str) -> None:
    app_dir = write_app(tmp_path / "app", ONE_ACTIVITY_APP, host=host)

    with pytest.raises(AppLoadError, match=message):
        load_app(app_dir)


def test_host_json_comments_are_refused_because_the_durable_sdk_cannot_read_them(tmp_path: Path) -> None:
    # azure-functions-durable json.loads()es ./host.json at import; the worker imports it from the app folder.
    host = '{\n  "version": "2.0",\n  // hub settings\n  "extensions": {}\n}\n'
    app_dir = write_app(tmp_path / "app", ONE_ACTIVITY_APP, host=host)

    with pytest.raises(AppLoadError, match=r"host\.json:3: contains comments; .* remove the comments"):
        load_app(app_dir)


def test_host_json_with_a_byte_order_mark_is_refused(tmp_path: Path) -> None:
    app_dir = write_app(tmp_path / "app", ONE_ACTIVITY_APP)
    (app_dir / "host.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(MINIMAL_HOST).encode())

    with pytest.raises(AppLoadError, match="byte-order mark"):
        load_app(app_dir)


def test_missing_host_json_is_an_error(tmp_path: Path) -> None:
    app_dir = write_app(tmp_path / "app", ONE_ACTIVITY_APP)
    (app_dir / "host.json").unlink()

    with pytest.raises(AppLoadError, match=r"host\.json is missing"):
        load_app(app_dir)


def test_missing_function_app_py_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(json.dumps(MINIMAL_HOST))

    with pytest.raises(AppLoadError, match=r"no function_app\.py in"):
        load_app(tmp_path)


def test_missing_app_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AppLoadError, match="does not exist"):
        load_app(tmp_path / "nowhere")


def one_line_error(app_dir: Path) -> str:
    with pytest.raises(AppLoadError) as caught:
        load_app(app_dir)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    app_dir = write_app(
        tmp_path / "app", "import azure.functions as func\n\napp = func.FunctionApp(\n\ndef x(:\n"
    )

    message = one_line_error(app_dir)

    assert message.startswith("function_app.py:")
    assert "SyntaxError:" in message
    line = int(message.split(":")[1])
    assert 3 <= line <= 5


def test_missing_module_names_the_import_line(tmp_path: Path) -> None:
    code = "import azure.functions as func\nimport json\n\nimport no_such_package_xyz\n\napp = 1\n"
    app_dir = write_app(tmp_path / "app", code)

    assert one_line_error(app_dir) == (
        "function_app.py:4: ModuleNotFoundError: No module named 'no_such_package_xyz'"
    )


def test_exception_at_import_names_the_raising_line(tmp_path: Path) -> None:
    code = "import os\n\nSETTING = os.environ['DEFINITELY_NOT_SET_FOR_DEVHOST_TEST']\n"
    app_dir = write_app(tmp_path / "app", code)
    os.environ.pop("DEFINITELY_NOT_SET_FOR_DEVHOST_TEST", None)

    assert one_line_error(app_dir) == "function_app.py:3: KeyError: 'DEFINITELY_NOT_SET_FOR_DEVHOST_TEST'"


def test_exception_in_a_helper_module_names_the_helper(tmp_path: Path) -> None:
    app_dir = write_app(
        tmp_path / "app",
        "import helpers\n",
        extra_files={"helpers.py": "X = 1\nraise RuntimeError('bad config')\n"},
    )

    assert one_line_error(app_dir) == "helpers.py:2: RuntimeError: bad config"


def test_sys_exit_at_import_is_reported_not_raised(tmp_path: Path) -> None:
    app_dir = write_app(tmp_path / "app", "import sys\nsys.exit('no config')\n")

    assert one_line_error(app_dir) == "function_app.py:2: SystemExit: no config"


def test_module_without_function_app_is_an_error(tmp_path: Path) -> None:
    app_dir = write_app(tmp_path / "app", "VALUE = 1\n")

    assert "no function app found" in one_line_error(app_dir)


def test_two_function_apps_are_refused_like_the_worker(tmp_path: Path) -> None:
    code = "import azure.functions as func\n\nfirst = func.FunctionApp()\nsecond = func.FunctionApp()\n"
    app_dir = write_app(tmp_path / "app", code)

    assert "more than one top-level function app (first, second)" in one_line_error(app_dir)


def test_app_found_under_another_name(tmp_path: Path) -> None:
    code = ONE_ACTIVITY_APP.replace("app = df.DFApp()", "my_app = df.DFApp()").replace("@app.", "@my_app.")
    loaded = load_app(write_app(tmp_path / "app", code))

    assert [f.get_function_name() for f in loaded.functions] == ["echo"]


def test_duplicate_function_names_are_reported(tmp_path: Path) -> None:
    duplicate = (
        "\n\n@app.function_name('echo')\n@app.activity_trigger(input_name='y')\ndef other(y):\n    return y\n"
    )
    code = ONE_ACTIVITY_APP + duplicate
    app_dir = write_app(tmp_path / "app", code)

    assert "Function echo does not have a unique function name" in one_line_error(app_dir)


def test_reload_picks_up_edited_code_and_helpers(tmp_path: Path) -> None:
    code = (
        "import helpers\nimport azure.durable_functions as df\n\napp = df.DFApp()\n\n\n"
        "@app.activity_trigger(input_name='x')\ndef version(x):\n    return helpers.VERSION\n"
    )
    app_dir = write_app(tmp_path / "app", code, extra_files={"helpers.py": "VERSION = 1\n"})
    first = load_app(app_dir)
    (app_dir / "helpers.py").write_text("VERSION = 2\n")

    second = load_app(app_dir)

    run = next(f for f in second.functions if f.get_function_name() == "version").get_user_function()
    assert run(x=None) == 2
    assert first.module is not second.module
