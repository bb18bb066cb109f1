"""A database that is down when messages arrive: redelivery, then a dead letter with a clear reason, and
nothing lost — resubmitted once the database is back, the module is generated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, free_port, start_stack, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(database_url, tmp_path_factory.mktemp("dbdown"))


def test_messages_wait_out_a_database_outage_in_the_dead_letters_and_resubmit_completes_them(
    stack: Stack, tmp_path: Path
) -> None:
    module_id = stack.create_module("SQLite internals")
    good_env = dict(stack.env)
    # The same stack with PostgreSQL unreachable (nothing listens on that port).
    stack.env = {**good_env, "DATABASE_URL": f"postgresql://app:secret-pw@127.0.0.1:{free_port()}/lessons"}
    stack.restart_host(kill=False, extra_args=("--max-delivery-count", "3"))
    stack.enqueue({"module_id": module_id}, message_id="during-outage")

    letters = wait_until(lambda: stack.dead_letters(), timeout=120, what="the dead letter")
    assert [letter["message_id"] for letter in letters] == ["during-outage"]
    assert letters[0]["delivery_count"] == 3
    assert "127.0.0.1" in letters[0]["error"]
    assert "secret-pw" not in letters[0]["error"]
    assert "secret-pw" not in stack.host.stderr()

    stack.env = good_env
    stack.restart_host(kill=False)
    done = stack.devhost("resubmit", "lesson-generation", "--all", "--state-dir", str(stack.host.state_dir))
    assert done.returncode == 0, done.stderr
    state = stack.wait_for_module(module_id, "completed", "failed")
    assert state["status"] == "completed", state
    assert stack.dead_letters() == []
