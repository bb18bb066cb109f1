"""infra/deploy.sh: the commands of a dry run, usage errors, and a full run against a stand-in `az`.

Azure cannot be reached from here, so the full run puts a recording `az` first on PATH (the one thing
mocked); everything else (bash, mktemp, deploytool.py, the zip) is real.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "infra" / "deploy.sh"
SECRET_VALUE = "pw-that-must-never-be-printed"
BASE_ARGS = ["--resource-group", "rg-lessons", "--location", "westeurope", "--name", "lessons"]


def run_script(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env if env is not None else base_env(),
        check=False,
    )


def base_env(**extra: str) -> dict[str, str]:
    # No az on this PATH: a dry run must not need it.
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def option(command: list[str], name: str) -> str:
    assert name in command, f"{name} missing from {command}"
    return command[command.index(name) + 1]


def all_values(command: list[str], name: str) -> list[str]:
    """Every argument following each occurrence of `name`, up to the next option."""
    values: list[str] = []
    for i, arg in enumerate(command):
        if arg == name:
            for value in command[i + 1 :]:
                if value.startswith("--"):
                    break
                values.append(value)
    return values


@pytest.mark.parametrize("plan", ["flex", "premium"])
def test_dry_run_prints_every_command_and_runs_none(plan: str, tmp_path: Path) -> None:
    env = base_env(DATABASE_URL=f"postgresql://u:{SECRET_VALUE}@db/x", TMPDIR=str(tmp_path))
    result = run_script(["--dry-run", *BASE_ARGS, "--plan", plan], env)
    assert result.returncode == 0, result.stderr
    assert SECRET_VALUE not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == [], "a dry run creates nothing"
    commands = [shlex.split(line) for line in result.stdout.splitlines()]
    programs = [c[:4] if c[0] == "az" else c[:1] for c in commands]
    assert [p[0] for p in programs] == ["mktemp", "az", "python3", "az", "rm", "python3", "az"]

    mktemp, group, secrets, deployment, remove, package, zip_deploy = commands
    work_template = mktemp[-1]
    assert mktemp[:2] == ["mktemp", "-d"] and work_template.startswith(str(tmp_path) + "/")

    assert group[:3] == ["az", "group", "create"]
    assert option(group, "--name") == "rg-lessons" and option(group, "--location") == "westeurope"

    assert secrets[1] == str(REPO / "infra" / "deploytool.py") and secrets[2] == "secret-params"
    secrets_file = option(secrets, "--out")
    assert secrets_file.startswith(work_template + "/")

    assert deployment[:4] == ["az", "deployment", "group", "create"]
    assert option(deployment, "--resource-group") == "rg-lessons"
    assert Path(option(deployment, "--template-file")) == REPO / "infra" / "main.bicep"
    parameters = all_values(deployment, "--parameters")
    assert f"@{REPO / 'infra' / 'main.parameters.json'}" in parameters
    assert f"@{secrets_file}" in parameters
    assert {"name=lessons", "location=westeurope", f"plan={plan}"} <= set(parameters)
    for value in parameters:  # every file it names exists (or is made by the step before)
        if value.startswith("@") and value != f"@{secrets_file}":
            assert Path(value[1:]).is_file()

    assert remove == ["rm", "-f", secrets_file], "the secrets file is deleted right after the deployment"

    assert package[2] == "package" and Path(option(package, "--app-dir")) == REPO
    package_file = option(package, "--out")
    assert package_file.startswith(work_template + "/")

    assert zip_deploy[:5] == ["az", "functionapp", "deployment", "source", "config-zip"]
    assert option(zip_deploy, "--resource-group") == "rg-lessons"
    assert option(zip_deploy, "--name") == "lessons-func"
    assert option(zip_deploy, "--src") == package_file
    assert option(zip_deploy, "--build-remote") == "true"


def test_paths_with_spaces_are_quoted_so_each_line_splits_back_into_the_same_arguments(
    tmp_path: Path,
) -> None:
    spaced = tmp_path / "tmp dir"
    result = run_script(
        ["--dry-run", *BASE_ARGS], base_env(TMPDIR=str(spaced), PYTHON="/opt/my python/bin/py")
    )
    assert result.returncode == 0, result.stderr
    mktemp = shlex.split(result.stdout.splitlines()[0])
    assert mktemp == ["mktemp", "-d", f"{spaced}/lesson-orchestrator-deploy.XXXXXX"]
    assert shlex.split(result.stdout.splitlines()[2])[0] == "/opt/my python/bin/py"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--resource-group is required"),
        (["--resource-group", "rg", "--location", "westeurope"], "--name is required"),
        (["--resource-group", "rg", "--name", "lessons"], "--location is required"),
        ([*BASE_ARGS, "--plan", "consumption"], "--plan must be flex or premium"),
        ([*BASE_ARGS, "--bogus"], "unknown argument: --bogus"),
        (["--resource-group"], "--resource-group needs a value"),
        (["--resource-group", "rg", "--location", "West Europe", "--name", "lessons"], "--location"),
        (["--resource-group", "rg", "--location", "westeurope", "--name", "Lessons"], "--name 'Lessons'"),
        (["--resource-group", "rg", "--location", "westeurope", "--name", "ab"], "--name 'ab'"),
        (["--resource-group", "rg", "--location", "westeurope", "--name", "lessons-"], "--name 'lessons-'"),
        (["--resource-group", "bad/rg", "--location", "westeurope", "--name", "lessons"], "--resource-group"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(args: list[str], message: str) -> None:
    for dry in ([], ["--dry-run"]):
        result = run_script([*dry, *args])
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr
        assert result.stdout == ""


def test_help_exits_0() -> None:
    result = run_script(["--help"])
    assert result.returncode == 0
    assert "usage: infra/deploy.sh" in result.stdout and "--plan flex|premium" in result.stdout


def test_a_real_run_without_az_says_so_and_runs_nothing(tmp_path: Path) -> None:
    result = run_script(BASE_ARGS, base_env(DATABASE_URL="postgresql://u:p@db/x", TMPDIR=str(tmp_path)))
    assert result.returncode == 1
    assert "'az' is not installed" in result.stderr
    assert list(tmp_path.iterdir()) == []


FAKE_AZ = textwrap.dedent(
    """\
    #!{python}
    # Stand-in for the Azure CLI (Azure is unreachable here): records each call and keeps copies of the
    # files it is handed, as the real CLI would upload them.
    import json, os, shutil, stat, sys
    from pathlib import Path
    record = Path(os.environ["FAKE_AZ_RECORD"])
    args = sys.argv[1:]
    entry = {{"args": args}}
    for i, arg in enumerate(args):
        if arg == "--parameters" and args[i + 1].startswith("@") and "secrets" in args[i + 1]:
            secrets = Path(args[i + 1][1:])
            entry["secrets_mode"] = stat.S_IMODE(secrets.stat().st_mode)
            entry["secrets"] = json.loads(secrets.read_text())
        if arg == "--src":
            shutil.copy(args[i + 1], record.parent / "uploaded.zip")
    with record.open("a") as f:
        f.write(json.dumps(entry) + "\\n")
    """
)


def test_full_run_with_a_recording_az(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "az"
    fake.write_text(FAKE_AZ.format(python=sys.executable), encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    work_tmp = tmp_path / "tmp"
    work_tmp.mkdir()
    record = tmp_path / "calls.jsonl"
    env = base_env(
        PATH=f"{bin_dir}:/usr/bin:/bin",
        TMPDIR=str(work_tmp),
        FAKE_AZ_RECORD=str(record),
        PYTHON=sys.executable,
        DATABASE_URL=f"postgresql://u:{SECRET_VALUE}@db.example.org/lessons",
        GROQ_API_KEY="gsk_test",
        GITHUB_TOKEN="",
    )
    result = run_script([*BASE_ARGS, "--plan", "premium"], env)
    assert result.returncode == 0, result.stderr
    assert SECRET_VALUE not in result.stdout + result.stderr

    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert [c["args"][:3] for c in calls] == [
        ["group", "create", "--name"],
        ["deployment", "group", "create"],
        ["functionapp", "deployment", "source"],
    ]
    deployment = calls[1]
    assert deployment["secrets_mode"] == 0o600
    assert deployment["secrets"]["parameters"] == {
        "databaseUrl": {"value": f"postgresql://u:{SECRET_VALUE}@db.example.org/lessons"},
        "groqApiKey": {"value": "gsk_test"},
    }
    assert "plan=premium" in deployment["args"]

    with zipfile.ZipFile(tmp_path / "uploaded.zip") as archive:
        names = archive.namelist()
    assert {"function_app.py", "host.json", "requirements.txt"} <= set(names)
    assert not [n for n in names if n.split("/")[0] in {"devhost", "sandbox", "lessonctl", "tests", "infra"}]
    assert list(work_tmp.iterdir()) == [], "the work folder (secrets file, zip) is removed at exit"


def test_a_real_run_without_database_url_stops_before_azure(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "az"
    fake.write_text(FAKE_AZ.format(python=sys.executable), encoding="utf-8")
    fake.chmod(0o755)
    record = tmp_path / "calls.jsonl"
    env = base_env(PATH=f"{bin_dir}:/usr/bin:/bin", FAKE_AZ_RECORD=str(record), PYTHON=sys.executable)
    result = run_script(BASE_ARGS, env)
    assert result.returncode == 1
    assert "DATABASE_URL" in result.stderr
    assert not record.exists()
