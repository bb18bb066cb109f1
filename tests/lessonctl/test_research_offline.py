"""`lessonctl research` when no source can answer (no sandbox needed)."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.lessonctl.conftest import SENTINEL_SECRET, run_lessonctl


def closed_port_url(path: str = "") -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def test_no_source_answers_exit_1_one_stderr_line_per_source(workdir: Path) -> None:
    env = {
        "GITHUB_API_URL": closed_port_url(),
        "GITHUB_TOKEN": SENTINEL_SECRET,
        "STACKEXCHANGE_API_URL": closed_port_url(),
        "DEVTO_API_URL": closed_port_url(),
        "DOCS_SEARCH_URL": closed_port_url("/api/v1/search"),
    }
    result = run_lessonctl("research", "python asyncio", env=env, cwd=workdir)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["github", "stackoverflow", "youtube", "devto", "docs"]
    assert lines[2].startswith("youtube: skipped: ") and "YOUTUBE_API_KEY" in lines[2]
    assert all(": error: " in line for i, line in enumerate(lines) if i != 2)
    assert SENTINEL_SECRET not in result.stdout + result.stderr


def test_source_filter_and_bad_arguments(workdir: Path) -> None:
    result = run_lessonctl(
        "research", "rust", "--source", "devto", env={"DEVTO_API_URL": closed_port_url()}, cwd=workdir
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith("devto: error: ")
    assert len(result.stderr.splitlines()) == 1

    unknown = run_lessonctl("research", "rust", "--source", "reddit", cwd=workdir)
    assert unknown.returncode == 2 and "invalid choice: 'reddit'" in unknown.stderr

    empty = run_lessonctl("research", "   ", cwd=workdir)
    assert empty.returncode == 2 and "error: research topic is empty" in empty.stderr

    bad_url = run_lessonctl("research", "rust", env={"DEVTO_API_URL": "ftp://x"}, cwd=workdir)
    assert bad_url.returncode == 1 and bad_url.stderr.startswith("error: DEVTO_API_URL must be")
