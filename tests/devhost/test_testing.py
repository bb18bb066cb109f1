"""The pytest helper: activity overrides, call recording, virtual time, and the plugin fixture."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from devhost.testing import DurableTestHost, client_event_input, client_start_input
from devhost.testing import durable_host_factory as durable_host_factory  # the plugin's fixture
from tests.devhost.apps import core_app

REPO_ROOT = Path(__file__).resolve().parents[2]


async def test_overrides_by_value_callable_async_and_exception(tmp_path: Path) -> None:
    async def shout(name: str) -> str:
        return name.upper()

    overrides: dict[str, Any] = {"Hello": shout, "Echo": "constant", "Flaky": ValueError("injected")}
    async with DurableTestHost(core_app.app, tmp_path, activity_overrides=overrides) as host:
        fan = await host.start("FanOut", ["a", "b"])
        assert host.output(await host.wait_done(fan)) == ["A", "B"]
        assert sorted(host.activity_calls("Hello")) == ["a", "b"]
        counter = await host.start("Counter", 3)
        assert host.output(await host.wait_done(counter))["count"] == 3
        assert host.activity_calls("Echo") == [3]
        retry = await host.start("RetryFlaky", {"x": 1})
        status = await host.wait_done(retry)
        assert status.runtime_status == "Failed"
        assert "Activity function 'Flaky' failed: ValueError: injected" in (status.output_text or "")
        assert host.activity_calls("Flaky") == [{"x": 1}] * 3


async def test_wait_done_advances_virtual_time_and_advance_moves_it_by_hand(tmp_path: Path) -> None:
    async with DurableTestHost(core_app.app, tmp_path) as host:
        begin = host.now
        first = await host.start("HourTimer")
        await host.wait_done(first)
        assert dt.timedelta(hours=1) <= host.now - begin < dt.timedelta(hours=1, minutes=1)
        second = await host.start("HourTimer")
        assert host.status(second) is not None
        await host.wait_for(second, ["Running"])
        await host.advance(dt.timedelta(minutes=59))
        assert host.status(second).runtime_status == "Running"  # type: ignore[union-attr]
        await host.advance(dt.timedelta(minutes=2))
        status = await host.wait_for(second, ["Completed"])
        assert status.runtime_status == "Completed"


async def test_fixture_gives_each_host_its_own_state(durable_host_factory: Any) -> None:
    async with durable_host_factory(core_app.app) as one, durable_host_factory(core_app.app) as two:
        instance_id = await one.start("FanOut", ["x"], instance_id="same")
        await one.wait_done(instance_id)
        assert two.status("same") is None
        assert one.engine.state_dir != two.engine.state_dir


def test_client_encodings_match_the_python_client() -> None:
    # DurableOrchestrationClient posts json=df_dumps(input); the host keeps the JSON string (§6.5).
    assert client_start_input({"a": 1}) == json.dumps('{"a": 1}')
    assert client_start_input(None) is None
    assert client_event_input({"ok": True}) == json.dumps('{"ok": true}')
    assert client_event_input(None) == '"null"'


def test_plugin_loads_with_dash_p(tmp_path: Path) -> None:
    test_file = tmp_path / "test_uses_plugin.py"
    test_file.write_text(textwrap.dedent('''
        from tests.devhost.apps import core_app

        async def test_flow(durable_host_factory):
            async with durable_host_factory(core_app.app, activity_overrides={"Hello": "hi"}) as host:
                instance_id = await host.start("FanOut", ["a"])
                status = await host.wait_done(instance_id)
                assert host.output(status) == ["hi"]
                assert host.activity_calls("Hello") == ["a"]
    '''), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "devhost.testing", "-o", "asyncio_mode=auto",
         "--rootdir", str(tmp_path), "-c", "/dev/null", str(test_file)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
