"""`python -m devhost replay --history FILE` as a real subprocess: exit codes 0 / 1 / 2 and messages."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.devhost.test_replay_history import INSTANCE, fan_out_history, table_rows

REPO_ROOT = Path(__file__).resolve().parents[2]

FAN_OUT_APP = """\
import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context", orchestration="FanOut")
def fan_out(context):
    cities = context.get_input()["cities"]
    results = yield context.task_all([context.call_activity("{activity}", c) for c in cities])
    return results


@app.activity_trigger(input_name="city")
def {activity}(city: str) -> str:
    return f"Hello {{city}}!"
"""


def devhost(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devhost", *args],
        cwd=cwd or REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def make_app(folder: Path, activity: str = "SayHello") -> Path:
    folder.mkdir(parents=True)
    (folder / "function_app.py").write_text(textwrap.dedent(FAN_OUT_APP.format(activity=activity)))
    (folder / "host.json").write_text(json.dumps({"version": "2.0"}))
    return folder


@pytest.fixture
def history_file(tmp_path: Path) -> Path:
    path = tmp_path / "history.json"
    path.write_text(json.dumps(fan_out_history()))
    return path


def test_unchanged_code_replays_with_exit_0(tmp_path: Path, history_file: Path) -> None:
    app = make_app(tmp_path / "app")

    done = devhost("replay", "--history", str(history_file), "--app-dir", str(app))

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"replayed 3 episodes, 14 events of instance {INSTANCE}: deterministic"


def test_changed_code_exits_1_with_the_first_differing_step(tmp_path: Path, history_file: Path) -> None:
    app = make_app(tmp_path / "app", activity="Greet")

    done = devhost("replay", "--history", str(history_file), "--app-dir", str(app))

    assert done.returncode == 1, done.stderr
    assert "episode 1, history position 2, EventId 0" in done.stdout
    assert (
        "expected TaskScheduled 'SayHello' (EventId 0), code now schedules CallActivity 'Greet'"
        in done.stdout
    )


def test_exported_table_rows_replay(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app")
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps({"value": table_rows(fan_out_history())}))

    done = devhost("replay", "--history", str(rows), "--app-dir", str(app))

    assert done.returncode == 0, done.stderr
    assert "deterministic" in done.stdout


def test_app_dir_defaults_to_the_current_folder(tmp_path: Path, history_file: Path) -> None:
    app = make_app(tmp_path / "app")

    done = devhost("replay", "--history", str(history_file), cwd=app)

    assert done.returncode == 0, done.stderr


def test_no_instance_and_no_history_is_a_usage_error() -> None:
    done = devhost("replay")

    assert done.returncode == 2
    assert "INSTANCE_ID" in done.stderr and "--history" in done.stderr


def test_missing_history_file_exits_2(tmp_path: Path) -> None:
    done = devhost("replay", "--history", str(tmp_path / "nope.json"), "--app-dir", str(tmp_path))

    assert done.returncode == 2
    assert done.stderr.strip() == f"error: --history {tmp_path / 'nope.json'}: no such file"


def test_invalid_history_json_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[{")

    done = devhost("replay", "--history", str(bad), "--app-dir", str(tmp_path))

    assert done.returncode == 2
    assert "invalid JSON" in done.stderr


def test_app_that_fails_to_import_exits_2_with_file_and_line(tmp_path: Path, history_file: Path) -> None:
    app = make_app(tmp_path / "app")
    (app / "function_app.py").write_text("import azure.functions\nimport not_installed_anywhere\n")

    done = devhost("replay", "--history", str(history_file), "--app-dir", str(app))

    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: function_app.py:2: ModuleNotFoundError: No module named 'not_installed_anywhere'"
    )


def test_orchestrator_missing_from_the_app_exits_2(tmp_path: Path, history_file: Path) -> None:
    app = make_app(tmp_path / "app")
    code = (app / "function_app.py").read_text().replace('orchestration="FanOut"', 'orchestration="Other"')
    (app / "function_app.py").write_text(code)

    done = devhost("replay", "--history", str(history_file), "--app-dir", str(app))

    assert done.returncode == 2
    assert "recorded by orchestrator 'FanOut'" in done.stderr
    assert "its orchestrators: Other" in done.stderr


def test_blob_payloads_exit_2_with_instructions(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app")
    rows = table_rows(fan_out_history())
    rows[13]["Result"] = ""
    rows[13]["ResultBlobName"] = "big-result"
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows))

    done = devhost("replay", "--history", str(path), "--app-dir", str(app))

    assert done.returncode == 2
    assert "Result is in blob 'big-result'" in done.stderr


def test_history_from_a_folder_without_devhost_state_exits_2(tmp_path: Path) -> None:
    done = devhost("history", "some-instance", "--state-dir", str(tmp_path))

    assert done.returncode == 2
    assert done.stderr.strip() == f"error: no devhost state at {tmp_path} (use --state-dir to point at it)"
    assert list(tmp_path.iterdir()) == []  # reading never creates a store


def test_unreadable_state_exits_2(tmp_path: Path) -> None:
    (tmp_path / "devhost.sqlite3").write_text("not a database")

    done = devhost("replay", "some-instance", "--state-dir", str(tmp_path), "--app-dir", str(tmp_path))

    assert done.returncode == 2
    assert done.stderr.startswith(f"error: cannot read the devhost state at {tmp_path}:")
