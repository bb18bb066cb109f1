"""Fixtures shared by every test folder."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import postgres


@pytest.fixture(scope="session")
def postgres_server_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DSN of a running PostgreSQL server (maintenance database), started once per session."""
    from_env = postgres.server_dsn_from_env()
    if from_env:
        yield from_env
        return
    # Not under pytest's basetemp: pytest re-locks /tmp/pytest-of-<user> to 0700 at every session start,
    # and the server runs as its own system user when the tests run as root.
    server = postgres.start_embedded(Path(tempfile.mkdtemp(prefix="lesson-orchestrator-pg-")) / "data")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def database_url(postgres_server_dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database for this test module; dropped afterwards."""
    dsn = postgres.create_database(postgres_server_dsn, request.module.__name__)
    try:
        yield dsn
    finally:
        postgres.drop_database(postgres_server_dsn, dsn)
