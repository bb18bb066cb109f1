from __future__ import annotations

import asyncio
import socket

import pytest

from clients.db import DatabaseUnavailable, close_pools, get_pool


async def test_one_pool_per_dsn_and_loop_with_statement_timeout(migrated_url: str) -> None:
    pools = await asyncio.gather(*(get_pool(migrated_url) for _ in range(5)))
    assert len({id(p) for p in pools}) == 1
    assert await pools[0].fetchval("SHOW statement_timeout") == "30s"
    assert await pools[0].fetchval("SELECT '{\"a\": 1}'::jsonb") == {"a": 1}
    await close_pools()
    assert pools[0].is_closing()
    again = await get_pool(migrated_url)
    assert again is not pools[0]
    await close_pools()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_unreachable_database_names_host_not_password() -> None:
    dsn = f"postgresql://app:Sentinel-Pa55@127.0.0.1:{free_port()}/skillsync"
    with pytest.raises(DatabaseUnavailable) as caught:
        await get_pool(dsn)
    message = str(caught.value)
    assert f"127.0.0.1:{dsn.split(':')[3].split('/')[0]}/skillsync" in message
    assert "Sentinel-Pa55" not in message
