"""infra/deploytool.py: .funcignore matching, the deployment zip of this repo, the secret parameters file."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra.deploytool import FuncIgnore, build_package, main, write_secret_parameters

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "infra" / "deploytool.py"
RUNTIME_PACKAGES = ("activities", "orchestrations", "clients", "domain")
DEV_ONLY = ("devhost", "sandbox", "lessonctl", "demo", "tests", "bench", "infra", "docs", ".venv", ".devhost")


@pytest.mark.parametrize(
    ("rules", "path", "is_dir", "ignored"),
    [
        (["tests/"], "tests", True, True),
        (["tests/"], "tests", False, False),  # a trailing slash matches directories only
        (["tests/"], "clients/tests", True, True),  # unanchored: any depth
        (["/tests"], "clients/tests", True, False),  # leading slash: root only
        (["docs/*.md"], "docs/a.md", False, True),
        (["docs/*.md"], "x/docs/a.md", False, False),  # a slash inside anchors too
        (["*.pyc"], "a/b/c.pyc", False, True),
        (["**/cache"], "a/b/cache", True, True),
        (["**/cache"], "cache", True, True),
        (["logs/**"], "logs/a/b.txt", False, True),
        (["a/**/z"], "a/x/y/z", False, True),
        (["*.md", "!README.md"], "README.md", False, False),  # negation: last match wins
        (["*.md", "!README.md", "README.md"], "README.md", False, True),
        (["file?.txt"], "file1.txt", False, True),
        (["file?.txt"], "file10.txt", False, False),
        (["[abc].py"], "b.py", False, True),
        (["[!abc].py"], "b.py", False, False),
        (["# comment", "", "  "], "comment", False, False),
        (["\\#hash"], "#hash", False, True),
        ([".git*"], ".gitignore", False, True),
        ([".git*"], ".github", True, True),
    ],
)
def test_funcignore_follows_gitignore_rules(rules: list[str], path: str, is_dir: bool, ignored: bool) -> None:
    assert FuncIgnore(rules).ignores(path, is_dir) is ignored


def test_repo_funcignore_keeps_dev_folders_and_local_settings_out() -> None:
    ignore = FuncIgnore.from_file(REPO / ".funcignore")
    for folder in (*DEV_ONLY, ".git", "__pycache__", "clients/__pycache__"):
        assert ignore.ignores(folder, is_dir=True), folder
    for file in ("local.settings.json", "requirements-dev.txt", "README.md", ".gitignore", "x.pyc"):
        assert ignore.ignores(file, is_dir=False), file
    for folder in RUNTIME_PACKAGES:
        assert not ignore.ignores(folder, is_dir=True), folder
    for file in ("function_app.py", "host.json", "requirements.txt"):
        assert not ignore.ignores(file, is_dir=False), file


def test_package_of_this_repo_holds_the_app_and_nothing_dev_only(tmp_path: Path) -> None:
    out = tmp_path / "app.zip"
    names = build_package(REPO, out)
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == sorted(names)
        assert archive.testzip() is None
    tops = {name.split("/")[0] for name in names}
    assert {"function_app.py", "host.json", "requirements.txt", *RUNTIME_PACKAGES} <= tops
    assert not tops & set(DEV_ONLY), tops & set(DEV_ONLY)
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", "local.settings.json"))]
    # Every runtime package folder is importable (has its __init__.py).
    folders = {n.rsplit("/", 1)[0] for n in names if "/" in n and n.endswith(".py")}
    assert all(f"{folder}/__init__.py" in names for folder in folders), folders
    # Every file the Python worker imports from the package is inside it.
    assert all((REPO / name).is_file() for name in names)


def test_package_never_swallows_its_own_output(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    for name in ("function_app.py", "host.json", "requirements.txt"):
        (app / name).write_text("", encoding="utf-8")
    (app / ".funcignore").write_text("build/\n", encoding="utf-8")
    names = build_package(app, app / "app.zip")  # written inside the app folder
    assert "app.zip" not in names and "app.zip.partial" not in names
    assert sorted(names) == [".funcignore", "function_app.py", "host.json", "requirements.txt"]


def test_package_refuses_a_folder_that_is_not_a_function_app(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(TOOL), "package", "--app-dir", str(tmp_path), "--out", str(tmp_path / "a.zip")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "function_app.py, host.json, requirements.txt missing" in result.stderr
    assert not (tmp_path / "a.zip").exists()


def test_secret_parameters_file_has_only_the_set_secrets_and_is_private(tmp_path: Path) -> None:
    out = tmp_path / "secrets.json"
    out.write_text("old", encoding="utf-8")
    out.chmod(0o644)
    env = {
        "DATABASE_URL": " postgresql://u:p@h/db ",
        "GEMINI_API_KEY": "g",
        "GITHUB_TOKEN": "  ",
        "OTHER": "x",
    }
    assert write_secret_parameters(env, out) == ["databaseUrl", "geminiApiKey"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["parameters"] == {
        "databaseUrl": {"value": "postgresql://u:p@h/db"},
        "geminiApiKey": {"value": "g"},
    }


def test_secret_parameters_without_database_url_fail_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "secrets.json"
    assert main(["secret-params", "--out", str(out)], env={"GROQ_API_KEY": "k"}) == 2
    assert "DATABASE_URL is not set" in capsys.readouterr().err
    assert not out.exists()


def test_secret_parameters_warn_when_no_ai_key_is_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "secrets.json"
    assert main(["secret-params", "--out", str(out)], env={"DATABASE_URL": "postgresql://u:p@h/d"}) == 0
    captured = capsys.readouterr()
    assert "wrote 1 secret parameters (databaseUrl)" in captured.out
    assert "warning: none of DEEPSEEK_API_KEY" in captured.err
    assert "u:p@h" not in captured.out + captured.err
