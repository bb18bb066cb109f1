"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import postgres


@pytest.fixture(scope="session")
def postgres_server_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DSN of a running PostgreSQL server (maintenance database), started once per session."""
    from_env = postgres.server_dsn_from_env()
    if from_env:
        yield from_env
        return
    server = postgres.start_embedded(tmp_path_factory.mktemp("pg") / "data")
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
