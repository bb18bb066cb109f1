"""End to end: a real `python -m devhost.hostcli start` process, driven only through HTTP and the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from devhost.process import DevhostProcess, ProcessError, launch_devhost, wait_for

REPO = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"
BASIC_APP = APPS / "host_basic"
HUB = "HostTestHub"
T = TypeVar("T")

pytestmark = pytest.mark.slow


# --- harness


def wait_until(check: Callable[[], T | None], *, timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail with `what` at the deadline."""
    try:
        return wait_for(check, timeout=timeout, what=what)
    except ProcessError as exc:
        raise AssertionError(str(exc)) from None


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str, url: str, body: bytes | str | None = None, headers: dict[str, str] | None = None
) -> Response:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return Response(answer.status, dict(answer.headers.items()), answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers.items()), error.read())


class RunningHost(DevhostProcess):
    """A devhost child process plus the durable API calls these tests make."""

    def status(self, instance_id: str, query: str = "") -> Response:
        return http("GET", f"{self.webhook}/instances/{instance_id}{query}")

    def wait_for_status(self, instance_id: str, *statuses: str, timeout: float = 60.0) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            answer = self.status(instance_id)
            if answer.status in (200, 202):
                payload = answer.json()
                if payload["runtimeStatus"] in statuses:
                    return payload
            return None

        return wait_until(
            check, timeout=timeout, what=f"{instance_id} to reach {statuses}; log:\n{self.stderr()}"
        )

    def start_orchestration(self, name: str, body: Any = None, instance_id: str | None = None) -> Response:
        suffix = f"/{instance_id}" if instance_id else ""
        data = None if body is None else json.dumps(body)
        return http(
            "POST",
            f"{self.base_url}/api/orchestrators/{name}{suffix}",
            data,
            {"Content-Type": "application/json"},
        )


def hostcli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devhost.hostcli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def start_host(
    app_dir: Path,
    state_dir: Path,
    log_dir: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    expect_ready: bool = True,
    port: int | None = None,
) -> RunningHost:
    environment = {**os.environ, **(env or {})}
    launched = launch_devhost(app_dir, state_dir, log_dir, *extra, env=environment, port=port)
    host = RunningHost(**vars(launched))
    if expect_ready:
        try:
            host.wait_ready(timeout=60)
        except ProcessError as exc:
            raise AssertionError(str(exc)) from None
    return host


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trace")


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, trace_dir: Path) -> Iterator[RunningHost]:
    root = tmp_path_factory.mktemp("host")
    running = start_host(
        BASIC_APP, root / "state", root / "logs", env={"HOST_TEST_TRACE_DIR": str(trace_dir)}
    )
    yield running
    code = running.stop()
    assert code == 0, running.stderr()


def trace_lines(trace_dir: Path, name: str) -> list[str]:
    path = trace_dir / name
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


# --- start-up


def test_start_lists_functions_marks_unserved_and_prints_one_ready_line(host: RunningHost) -> None:
    out = host.stdout()
    assert out.count("devhost ready on") == 1
    assert f"devhost ready on http://127.0.0.1:{host.port}\n" in out
    assert (
        f"http_start: [POST] http://127.0.0.1:{host.port}/api/orchestrators/{{functionName}}/{{instanceId?}}"
        in out
    )
    assert "job_starter: serviceBusTrigger (local queue 'jobs')" in out
    assert "hello_sequence: orchestrationTrigger" in out
    assert "say_hello: activityTrigger" in out
    assert "NOT SERVED every_five_minutes: timerTrigger" in out
    assert "Auth levels are not enforced locally" in out
    answer = http("GET", f"{host.base_url}/admin/host/status")
    assert (answer.status, answer.json()) == (200, {"state": "Running"})


def test_missing_service_bus_connection_stops_start_with_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OrdersBusConnection"}
    running = start_host(
        APPS / "host_missing_connection", tmp_path / "state", tmp_path, env=env, expect_ready=False
    )
    code = running.process.wait(timeout=60)
    assert code == 2
    assert "Service Bus connection setting 'OrdersBusConnection' is not set" in running.stderr()
    assert "devhost ready" not in running.stdout()


def test_real_namespace_connection_warns_that_the_local_queue_is_served(tmp_path: Path) -> None:
    env = {
        "OrdersBusConnection": "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=k;"
        "SharedAccessKey=s"
    }
    running = start_host(APPS / "host_missing_connection", tmp_path / "state", tmp_path, env=env)
    try:
        assert "contoso.servicebus.windows.net" in running.stderr()
        assert "serves its local queue 'orders' instead" in running.stderr()
    finally:
        assert running.stop() == 0


def test_unloadable_app_and_busy_port_fail_with_exit_2_and_one_clear_line(
    tmp_path: Path, host: RunningHost
) -> None:
    broken_app = tmp_path / "broken_app"
    broken_app.mkdir()
    (broken_app / "host.json").write_text('{"version": "2.0"}', encoding="utf-8")
    (broken_app / "function_app.py").write_text(
        "import azure.functions as func\napp = func.FunctionApp()\nvalue = undefined_name\n", encoding="utf-8"
    )
    broken = start_host(broken_app, tmp_path / "s1", tmp_path, expect_ready=False)
    assert broken.process.wait(timeout=60) == 2
    assert "function_app.py:3: NameError: name 'undefined_name' is not defined" in broken.stderr()
    busy = start_host(BASIC_APP, tmp_path / "s2", tmp_path, expect_ready=False, port=host.port)
    assert busy.process.wait(timeout=60) == 2
    assert f"cannot listen on http://127.0.0.1:{host.port}" in busy.stderr()
    same_state = start_host(BASIC_APP, host.state_dir, tmp_path, expect_ready=False)
    assert same_state.process.wait(timeout=60) == 2
    in_use = f"state dir {host.state_dir} is in use by another devhost (pid {host.process.pid}"
    assert in_use in same_state.stderr()
    assert "devhost ready" not in broken.stdout() + busy.stdout() + same_state.stdout()


def test_sigterm_stops_cleanly_with_exit_0(tmp_path: Path) -> None:
    running = start_host(BASIC_APP, tmp_path / "state", tmp_path)
    assert running.stop() == 0
    assert "devhost stopped" in running.stdout()


def test_sigterm_stops_even_while_a_function_hangs(tmp_path: Path) -> None:
    import threading

    trace = tmp_path / "trace"
    trace.mkdir()
    running = start_host(BASIC_APP, tmp_path / "state", tmp_path, env={"HOST_TEST_TRACE_DIR": str(trace)})

    def call_and_ignore_the_dropped_connection() -> None:
        with contextlib.suppress(OSError):
            http("GET", f"{running.base_url}/api/hang")

    caller = threading.Thread(target=call_and_ignore_the_dropped_connection, daemon=True)
    caller.start()
    wait_until(lambda: trace_lines(trace, "hang.log"), what="the hanging function to start")
    assert running.stop() == 0
    assert "still running at stop" in running.stderr()


# --- HTTP triggers


def test_http_trigger_route_params_query_and_headers(host: RunningHost) -> None:
    answer = http("GET", f"{host.base_url}/api/hello/Ada?greeting=Hi")
    assert answer.status == 200
    assert answer.body == b"Hi, Ada!"
    assert answer.headers["X-Devhost-Test"] == "yes"
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert http("GET", f"{host.base_url}/API/Hello/Ada").body == b"Hello, Ada!"  # case-insensitive
    assert http("GET", f"{host.base_url}/other/hello/Ada").status == 404
    # {name:alpha} refuses digits; POST is not an allowed method.
    assert http("GET", f"{host.base_url}/api/hello/Ada1").status == 404
    assert http("POST", f"{host.base_url}/api/hello/Ada", b"").status == 405


def test_http_trigger_optional_parameter_body_and_context(host: RunningHost) -> None:
    with_part = http(
        "PUT", f"{host.base_url}/api/echo/12/extra?x=1&x=2", '{"k": 1}', {"Content-Type": "application/json"}
    )
    assert with_part.status == 201
    seen = with_part.json()
    assert seen["method"] == "PUT"
    assert seen["route"] == {"id": "12", "part": "extra"}
    assert seen["params"] == {"x": "1,2"}
    assert seen["body"] == '{"k": 1}'
    assert seen["content_type"] == "application/json"
    assert seen["url"] == f"{host.base_url}/api/echo/12/extra?x=1&x=2"
    assert seen["function_name"] == "echo" and len(seen["invocation_id"]) == 36
    without_part = http("POST", f"{host.base_url}/api/echo/5", b"")
    assert without_part.status == 201 and without_part.json()["route"] == {"id": "5"}
    assert http("POST", f"{host.base_url}/api/echo/notanint", b"").status == 404


def test_failing_http_function_gives_500_and_logs_the_traceback(host: RunningHost) -> None:
    answer = http("GET", f"{host.base_url}/api/broken")
    assert answer.status == 500
    log = wait_until(
        lambda: "this HTTP function always fails" in host.stderr() and host.stderr(), what="the failure log"
    )
    assert "Executed 'Functions.broken' (Failed" in log
    assert "Traceback (most recent call last)" in log


def test_function_timeout_from_host_json_fails_the_invocation(tmp_path: Path) -> None:
    running = start_host(APPS / "host_timeout", tmp_path / "state", tmp_path)
    try:
        assert http("GET", f"{running.base_url}/api/slow?seconds=0").body == b"finished"
        answer = http("GET", f"{running.base_url}/api/slow?seconds=30")
        assert answer.status == 500
        expected = "Timeout value of 00:00:01 exceeded by function 'Functions.slow'"
        wait_until(lambda: expected in running.stderr(), what="the timeout log line")
    finally:
        assert running.stop() == 0


# --- durable HTTP API


def test_http_starter_check_status_response_and_completed_status(host: RunningHost) -> None:
    answer = host.start_orchestration("hello_sequence", {"cities": ["Oslo", "Lima"]})
    assert answer.status == 202
    links = answer.json()
    instance_id = links["id"]
    assert len(instance_id) == 32
    query = f"?taskHub={HUB}&connection=Storage"
    base = f"{host.webhook}/instances/{instance_id}"
    assert links == {
        "id": instance_id,
        "statusQueryGetUri": f"{base}{query}",
        "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}{query}",
        "terminatePostUri": f"{base}/terminate?reason={{text}}&{query[1:]}",
        "rewindPostUri": f"{base}/rewind?reason={{text}}&{query[1:]}",
        "purgeHistoryDeleteUri": f"{base}{query}",
        "restartPostUri": f"{base}/restart{query}",
        "suspendPostUri": f"{base}/suspend?reason={{text}}&{query[1:]}",
        "resumePostUri": f"{base}/resume?reason={{text}}&{query[1:]}",
    }
    assert answer.headers["Location"] == links["statusQueryGetUri"]
    assert answer.headers["Retry-After"] == "10"

    final = host.wait_for_status(instance_id, "Completed")
    assert final["name"] == "hello_sequence"
    assert final["instanceId"] == instance_id
    assert final["output"] == ["Hello Oslo!", "Hello Lima!"]
    assert final["customStatus"] == {"done": 2}
    # Started through the SDK client: the stored input is a JSON string literal (§6.5).
    assert final["input"] == '{"cities": ["Oslo", "Lima"]}'
    for key in ("createdTime", "lastUpdatedTime"):
        assert len(final[key]) == 20 and final[key].endswith("Z")
    assert set(final) == {
        "name",
        "instanceId",
        "runtimeStatus",
        "input",
        "customStatus",
        "output",
        "createdTime",
        "lastUpdatedTime",
    }
    without_input = host.status(instance_id, "?showInput=false").json()
    assert without_input["input"] is None


def test_status_history_payload_field_by_field(host: RunningHost) -> None:
    instance_id = host.start_orchestration("hello_sequence", {"cities": ["Rome"]}).json()["id"]
    host.wait_for_status(instance_id, "Completed")
    answer = host.status(instance_id, "?showHistory=true&showHistoryOutput=true&showInput=true")
    assert answer.status == 200
    events = answer.json()["historyEvents"]
    assert [e["EventType"] for e in events] == ["ExecutionStarted", "TaskCompleted", "ExecutionCompleted"]
    started, completed, done = events
    assert started["FunctionName"] == "hello_sequence"
    assert started["Input"] == json.dumps(json.dumps({"cities": ["Rome"]}))
    for dropped in (
        "Name",
        "OrchestrationInstance",
        "ParentInstance",
        "Version",
        "Tags",
        "EventId",
        "IsPlayed",
    ):
        assert dropped not in started
    assert completed["FunctionName"] == "say_hello"
    assert completed["Result"] == "Hello Rome!"
    assert "TaskScheduledId" not in completed and "EventId" not in completed
    assert completed["ScheduledTime"] <= completed["Timestamp"]
    assert done["OrchestrationStatus"] == "Completed"
    assert done["Result"] == ["Hello Rome!"]

    quiet = host.status(instance_id, "?showHistory=true&showInput=false").json()["historyEvents"]
    assert "Input" not in quiet[0]
    assert "Result" not in quiet[1] and "Result" not in quiet[2]
    assert quiet[1]["FunctionName"] == "say_hello"


def test_failed_orchestration_status_and_history(host: RunningHost) -> None:
    instance_id = host.start_orchestration("failing").json()["id"]
    final = host.wait_for_status(instance_id, "Failed")
    assert final["output"].startswith(
        "Orchestrator function 'failing' failed: Activity function 'explode' failed"
    )
    assert "ValueError: explode got x" in final["output"]
    answer = host.status(instance_id, "?showHistory=true")
    assert answer.status == 200
    kinds = [e["EventType"] for e in answer.json()["historyEvents"]]
    assert kinds == ["ExecutionStarted", "TaskFailed", "ExecutionCompleted"]
    failed = answer.json()["historyEvents"][1]
    assert failed["FunctionName"] == "explode"
    assert "ValueError: explode got x" in failed["Reason"]
    assert host.status(instance_id, "?returnInternalServerErrorOnFailure=true").status == 500


def test_raise_event_completes_the_waiting_instance(host: RunningHost) -> None:
    instance_id = host.start_orchestration("wait_for_approval").json()["id"]
    running = host.wait_for_status(instance_id, "Running")
    assert running["customStatus"] == "waiting"
    pending = host.status(instance_id)
    assert pending.status == 202
    assert pending.headers["Retry-After"] == "5"
    assert pending.headers["Location"] == f"{host.webhook}/instances/{instance_id}"
    url = f"{host.webhook}/instances/{instance_id}/raiseEvent/Approval"
    wrong_type = http("POST", url, '{"ok": true}', {"Content-Type": "text/plain"})
    assert wrong_type.status == 400
    assert "application/json" in wrong_type.json()["ExceptionMessage"]
    malformed = http("POST", url, "{not json", {"Content-Type": "application/json"})
    assert malformed.status == 400 and "not valid JSON" in malformed.json()["ExceptionMessage"]
    accepted = http("POST", url, '{"by": "ops"}', {"Content-Type": "application/json"})
    assert accepted.status == 202 and accepted.body == b""
    final = host.wait_for_status(instance_id, "Completed")
    assert final["output"] == {"approved": {"by": "ops"}}
    gone = http("POST", url, "1", {"Content-Type": "application/json"})
    assert gone.status == 410
    unknown = http(
        "POST",
        f"{host.webhook}/instances/nope-{uuid.uuid4().hex}/raiseEvent/Approval",
        "1",
        {"Content-Type": "application/json"},
    )
    assert unknown.status == 404


def test_terminate_then_410_and_reason_as_output(host: RunningHost) -> None:
    instance_id = host.start_orchestration("wait_for_approval").json()["id"]
    host.wait_for_status(instance_id, "Running")
    answer = http("POST", f"{host.webhook}/instances/{instance_id}/terminate?reason=no%20longer%20needed")
    assert answer.status == 202
    final = host.wait_for_status(instance_id, "Terminated")
    assert final["output"] == "no longer needed"
    assert http("POST", f"{host.webhook}/instances/{instance_id}/terminate?reason=again").status == 410
    assert http("POST", f"{host.webhook}/instances/missing-{uuid.uuid4().hex}/terminate").status == 404


def test_suspend_and_resume(host: RunningHost) -> None:
    instance_id = host.start_orchestration("wait_for_approval").json()["id"]
    host.wait_for_status(instance_id, "Running")
    resume_running = http("POST", f"{host.webhook}/instances/{instance_id}/resume?reason=x")
    assert resume_running.status == 500
    assert http("POST", f"{host.webhook}/instances/{instance_id}/suspend?reason=pause").status == 202
    host.wait_for_status(instance_id, "Suspended")
    assert http("POST", f"{host.webhook}/instances/{instance_id}/suspend?reason=pause").status == 500
    # An event raised while suspended is kept and delivered on resume.
    http(
        "POST",
        f"{host.webhook}/instances/{instance_id}/raiseEvent/Approval",
        "true",
        {"Content-Type": "application/json"},
    )
    assert http("POST", f"{host.webhook}/instances/{instance_id}/resume?reason=go").status == 202
    final = host.wait_for_status(instance_id, "Completed")
    assert final["output"] == {"approved": True}


def test_restart_with_new_and_same_instance_id(host: RunningHost) -> None:
    instance_id = host.start_orchestration("hello_sequence", {"cities": ["Kyiv"]}).json()["id"]
    host.wait_for_status(instance_id, "Completed")
    fresh = http("POST", f"{host.webhook}/instances/{instance_id}/restart")
    assert fresh.status == 202
    new_id = fresh.json()["id"]
    assert new_id != instance_id
    assert fresh.headers["Location"] == fresh.json()["statusQueryGetUri"]
    assert host.wait_for_status(new_id, "Completed")["output"] == ["Hello Kyiv!"]
    same = http("POST", f"{host.webhook}/instances/{instance_id}/restart?restartWithNewInstanceId=false")
    assert same.status == 202 and same.json()["id"] == instance_id
    assert host.wait_for_status(instance_id, "Completed")["output"] == ["Hello Kyiv!"]
    unknown = http("POST", f"{host.webhook}/instances/none-{uuid.uuid4().hex}/restart")
    assert unknown.status == 400
    assert "does not match a valid orchestration instance" in unknown.json()["ExceptionMessage"]


def test_rewind_is_refused_with_a_clear_message(host: RunningHost) -> None:
    instance_id = host.start_orchestration("failing").json()["id"]
    host.wait_for_status(instance_id, "Failed")
    answer = http("POST", f"{host.webhook}/instances/{instance_id}/rewind?reason=retry")
    assert answer.status == 501
    assert "Rewind is not supported by the devhost" in answer.json()
    completed = host.start_orchestration("hello_sequence", {"cities": ["Z"]}).json()["id"]
    host.wait_for_status(completed, "Completed")
    assert http("POST", f"{host.webhook}/instances/{completed}/rewind?reason=x").status == 410
    waiting = host.start_orchestration("wait_for_approval").json()["id"]
    host.wait_for_status(waiting, "Running")
    assert http("POST", f"{host.webhook}/instances/{waiting}/rewind?reason=x").status == 500
    http("POST", f"{host.webhook}/instances/{waiting}/terminate?reason=cleanup")
    entity = http("GET", f"{host.webhook}/entities/Counter/k1")
    assert entity.status == 501 and "not supported" in entity.json()["ExceptionMessage"]


def test_purge_one_and_by_filter(host: RunningHost) -> None:
    first = host.start_orchestration("hello_sequence", {"cities": ["A"]}).json()["id"]
    host.wait_for_status(first, "Completed")
    purged = http("DELETE", f"{host.webhook}/instances/{first}")
    assert (purged.status, purged.json()) == (200, {"instancesDeleted": 1})
    assert host.status(first).status == 404
    assert http("DELETE", f"{host.webhook}/instances/{first}").status == 404

    waiting = host.start_orchestration("wait_for_approval").json()["id"]
    done = host.start_orchestration("hello_sequence", {"cities": ["B"]}).json()["id"]
    host.wait_for_status(done, "Completed")
    host.wait_for_status(waiting, "Running")
    missing_from = http("DELETE", f"{host.webhook}/instances?runtimeStatus=Completed")
    assert missing_from.status == 400
    answer = http(
        "DELETE",
        f"{host.webhook}/instances?createdTimeFrom=2000-01-01T00:00:00Z&runtimeStatus=Completed,Running",
    )
    assert answer.status == 200 and answer.json()["instancesDeleted"] >= 1
    assert host.status(done).status == 404
    assert host.status(waiting).status == 202  # running instances are never purged by filter
    nothing = http(
        "DELETE",
        f"{host.webhook}/instances?createdTimeFrom=2000-01-01T00:00:00Z&createdTimeTo=2000-01-02T00:00:00Z",
    )
    assert nothing.status == 404


def test_list_with_filters_top_and_continuation(host: RunningHost) -> None:
    prefix = f"list-{uuid.uuid4().hex[:8]}-"
    ids = [f"{prefix}{i}" for i in range(5)]
    for instance_id in ids:
        assert host.start_orchestration("hello_sequence", {"cities": ["X"]}, instance_id).status == 202
    for instance_id in ids:
        host.wait_for_status(instance_id, "Completed")
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        headers = {"x-ms-continuation-token": token} if token else {}
        page = http(
            "GET",
            f"{host.webhook}/instances?instanceIdPrefix={prefix}&top=2&runtimeStatus=Completed",
            headers=headers,
        )
        assert page.status == 200
        batch = page.json()
        assert len(batch) <= 2
        seen += [item["instanceId"] for item in batch]
        pages += 1
        token = page.headers.get("x-ms-continuation-token")
        if not token:
            break
        assert pages < 10
    assert sorted(seen) == ids
    assert pages >= 3
    none = http("GET", f"{host.webhook}/instances?instanceIdPrefix={prefix}&runtimeStatus=Running")
    assert none.status == 200 and none.json() == []
    bad = http("GET", f"{host.webhook}/instances?runtimeStatus=Sleeping")
    assert bad.status == 400


def test_start_via_webhook_with_and_without_waiting(host: RunningHost) -> None:
    url = f"{host.webhook}/orchestrators/hello_sequence"
    plain = http("POST", url, '{"cities": ["Paris"]}', {"Content-Type": "application/json"})
    assert plain.status == 202
    instance_id = plain.json()["id"]
    final = host.wait_for_status(instance_id, "Completed")
    # A webhook body is stored as the JSON itself, not a string literal (§6.5).
    assert final["input"] == {"cities": ["Paris"]}
    waited = http(
        "POST",
        f"{url}?timeout=30&pollingInterval=1",
        '{"cities": ["Bern"]}',
        {"Content-Type": "application/json"},
    )
    assert waited.status == 200
    assert waited.json() == ["Hello Bern!"]
    timed_out = http("POST", f"{host.webhook}/orchestrators/wait_for_approval?timeout=1&pollingInterval=1")
    assert timed_out.status == 202 and "statusQueryGetUri" in timed_out.json()
    bad_wait = http("POST", f"{url}?timeout=1&pollingInterval=5", "{}", {"Content-Type": "application/json"})
    assert bad_wait.status == 400


def test_bad_input_answers(host: RunningHost) -> None:
    malformed = http(
        "POST", f"{host.webhook}/orchestrators/hello_sequence", "{oops", {"Content-Type": "application/json"}
    )
    assert malformed.status == 400
    assert malformed.json()["Message"] == "One or more of the arguments submitted is incorrect"
    unknown = http("POST", f"{host.webhook}/orchestrators/no_such_orchestrator")
    assert unknown.status == 400
    assert "doesn't exist" in unknown.json()["ExceptionMessage"]
    assert "'hello_sequence'" in unknown.json()["ExceptionMessage"]
    at_id = http("POST", f"{host.webhook}/orchestrators/hello_sequence/@bad")
    assert at_id.status == 400
    assert host.status(f"missing-{uuid.uuid4().hex}").status == 404
    assert http("GET", f"{host.webhook}/nothing/here").status == 404

    instance_id = f"dup-{uuid.uuid4().hex}"
    assert host.start_orchestration("wait_for_approval", None, instance_id).status == 202
    host.wait_for_status(instance_id, "Running")
    duplicate = http("POST", f"{host.webhook}/orchestrators/wait_for_approval/{instance_id}")
    assert duplicate.status == 500
    body = duplicate.json()
    assert body["Message"] == "Something went wrong while processing your request"
    assert "already exists" in body["ExceptionMessage"]
    # Through the HTTP starter the SDK raises, which the starter function turns into a 500.
    assert host.start_orchestration("wait_for_approval", None, instance_id).status == 500
    http("POST", f"{host.webhook}/instances/{instance_id}/terminate?reason=cleanup")


# --- Service Bus


def test_service_bus_starter_ignores_duplicates(host: RunningHost, trace_dir: Path) -> None:
    job_id = uuid.uuid4().hex[:12]
    body = json.dumps({"job_id": job_id})
    for _ in range(2):
        sent = hostcli(
            "enqueue", "jobs", "--body", body, "--property", "source=test", "--state-dir", str(host.state_dir)
        )
        assert sent.returncode == 0, sent.stderr
    final = host.wait_for_status(f"job-{job_id}", "Completed")
    assert final["output"] == f"Hello {job_id}!"

    def deliveries() -> list[dict[str, Any]] | None:
        entries = [json.loads(line) for line in trace_lines(trace_dir, "job_starter.log")]
        mine = [entry for entry in entries if entry["job_id"] == job_id]
        return mine if len(mine) == 2 else None

    seen = wait_until(deliveries, what="both deliveries")
    assert seen[0]["message_id"] != seen[1]["message_id"]
    assert all(entry["properties"] == {"source": "test"} for entry in seen)
    hello_calls = [line for line in trace_lines(trace_dir, "say_hello.log") if line == job_id]
    assert hello_calls == [job_id]
    listed = http("GET", f"{host.webhook}/instances?instanceIdPrefix=job-{job_id}")
    assert len(listed.json()) == 1


def test_service_bus_output_binding_feeds_the_local_queue(host: RunningHost) -> None:
    job_id = uuid.uuid4().hex[:12]
    answer = http("POST", f"{host.base_url}/api/jobs/{job_id}", b"")
    assert (answer.status, answer.body) == (202, b"queued")
    assert host.wait_for_status(f"job-{job_id}", "Completed")["output"] == f"Hello {job_id}!"


def test_poison_message_is_dead_lettered_with_its_error_and_can_be_resubmitted(
    host: RunningHost, trace_dir: Path
) -> None:
    message_id = f"poison-{uuid.uuid4().hex[:8]}"
    sent = hostcli(
        "enqueue",
        "poison",
        "--body",
        "bad payload",
        "--message-id",
        message_id,
        "--state-dir",
        str(host.state_dir),
    )
    assert sent.returncode == 0 and sent.stdout.strip() == message_id

    def dead_letter() -> dict[str, Any] | None:
        listed = hostcli("dead-letters", "poison", "--state-dir", str(host.state_dir))
        records = [json.loads(line) for line in listed.stdout.splitlines()]
        return next((r for r in records if r["message_id"] == message_id), None)

    record = wait_until(dead_letter, timeout=60, what="the dead letter")
    assert record["reason"] == "MaxDeliveryCountExceeded"
    assert record["error"] == "ValueError: cannot process 'bad payload'"
    assert record["delivery_count"] == 10
    assert record["body"] == "bad payload"
    deliveries = [line for line in trace_lines(trace_dir, "poison.log") if line.startswith(message_id)]
    assert deliveries == [f"{message_id} {n}" for n in range(1, 11)]

    again = hostcli("resubmit", "poison", "--message-id", message_id, "--state-dir", str(host.state_dir))
    assert again.returncode == 0 and again.stdout.split() == [message_id]
    wait_until(
        lambda: (
            len([line for line in trace_lines(trace_dir, "poison.log") if line.startswith(message_id)]) >= 20
        ),
        timeout=60,
        what="redeliveries",
    )
    assert wait_until(dead_letter, timeout=60, what="the second dead letter")["delivery_count"] == 10


def test_non_utf8_message_is_delivered_as_bytes_and_never_crashes_the_host(
    host: RunningHost, tmp_path: Path
) -> None:
    body_file = tmp_path / "binary.bin"
    body_file.write_bytes(b"\xff\xfe\x00\x01")
    message_id = f"bin-{uuid.uuid4().hex[:8]}"
    assert (
        hostcli(
            "enqueue",
            "poison",
            "--body-file",
            str(body_file),
            "--message-id",
            message_id,
            "--state-dir",
            str(host.state_dir),
        ).returncode
        == 0
    )

    def dead_letter() -> dict[str, Any] | None:
        listed = hostcli("dead-letters", "poison", "--state-dir", str(host.state_dir))
        return next(
            (r for r in map(json.loads, listed.stdout.splitlines()) if r["message_id"] == message_id), None
        )

    record = wait_until(dead_letter, timeout=60, what="the binary dead letter")
    assert record["body_base64"] == "//4AAQ=="
    assert record["error"].startswith("UnicodeDecodeError")
    assert http("GET", f"{host.base_url}/admin/host/status").status == 200


def test_a_return_value_without_return_binding_fails_the_delivery(host: RunningHost) -> None:
    assert (
        hostcli(
            "enqueue", "returns", "--body", "x", "--message-id", "ret-1", "--state-dir", str(host.state_dir)
        ).returncode
        == 0
    )

    def dead_letter() -> dict[str, Any] | None:
        listed = hostcli("dead-letters", "returns", "--state-dir", str(host.state_dir)).stdout.splitlines()
        return json.loads(listed[0]) if listed else None

    record = wait_until(dead_letter, timeout=60, what="the dead letter")
    assert record["error"] == (
        "RuntimeError: function 'returns_a_value' without a $return binding returned a non-None value"
    )


def test_max_concurrent_calls_bounds_parallel_deliveries(host: RunningHost, trace_dir: Path) -> None:
    prefix = f"burst-{uuid.uuid4().hex[:6]}"
    for i in range(12):
        assert (
            hostcli(
                "enqueue",
                "burst",
                "--body",
                "x",
                "--message-id",
                f"{prefix}-{i}",
                "--state-dir",
                str(host.state_dir),
            ).returncode
            == 0
        )

    def all_ran() -> list[int] | None:
        mine = [line for line in trace_lines(trace_dir, "burst.log") if line.startswith(prefix)]
        return [int(line.rsplit("=", 1)[1]) for line in mine] if len(mine) == 12 else None

    running_counts = wait_until(all_ran, timeout=60, what="12 burst deliveries")
    # host.json sets extensions.serviceBus.maxConcurrentCalls = 4.
    assert max(running_counts) == 4


def test_expired_lock_redelivers_while_the_first_delivery_still_runs(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    running = start_host(
        BASIC_APP,
        tmp_path / "state",
        tmp_path / "logs",
        "--lock-duration",
        "1",
        env={"HOST_TEST_TRACE_DIR": str(trace)},
    )
    try:
        assert (
            hostcli(
                "enqueue",
                "slow",
                "--body",
                "x",
                "--message-id",
                "slow-1",
                "--state-dir",
                str(running.state_dir),
            ).returncode
            == 0
        )
        lines = wait_until(
            lambda: trace_lines(trace, "slow.log") if len(trace_lines(trace, "slow.log")) >= 2 else None,
            timeout=30,
            what="a second delivery",
        )
        assert lines[:2] == ["slow-1 1", "slow-1 2"]
        wait_until(lambda: "lost its lock" in running.stderr(), timeout=30, what="the lock-lost warning")
        listed = hostcli("dead-letters", "slow", "--state-dir", str(running.state_dir))
        assert listed.stdout == ""
    finally:
        assert running.stop() == 0


def test_lock_is_renewed_while_a_long_function_runs(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    running = start_host(
        APPS / "host_renewal",
        tmp_path / "state",
        tmp_path / "logs",
        "--lock-duration",
        "1",
        env={"HOST_TEST_TRACE_DIR": str(trace)},
    )
    try:
        assert (
            hostcli(
                "enqueue",
                "long",
                "--body",
                "x",
                "--message-id",
                "long-1",
                "--state-dir",
                str(running.state_dir),
            ).returncode
            == 0
        )
        wait_until(lambda: "end long-1 1" in trace_lines(trace, "long.log"), timeout=30, what="the end")
        wait_until(lambda: "Executed 'Functions.long_running' (Succeeded" in running.stderr(), what="the log")
        assert trace_lines(trace, "long.log") == ["start long-1 1", "end long-1 1"]
        assert "lost its lock" not in running.stderr()
    finally:
        assert running.stop() == 0


# --- durability


def test_sigkill_mid_orchestration_then_restart_completes(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    state = tmp_path / "state"
    env = {"HOST_TEST_TRACE_DIR": str(trace)}
    gate = tmp_path / "gate.txt"
    first = start_host(BASIC_APP, state, tmp_path / "logs", env=env)
    answer = first.start_orchestration("crash_resume", str(gate))
    instance_id = answer.json()["id"]
    wait_until(lambda: trace_lines(trace, "wait_for_file.log"), what="the activity to start")
    first.kill()
    assert first.process.returncode == -signal.SIGKILL

    second = start_host(BASIC_APP, state, tmp_path / "logs", env=env, port=first.port)
    try:
        assert second.status(instance_id).json()["runtimeStatus"] == "Running"
        gate.write_text("opened", encoding="utf-8")
        final = second.wait_for_status(instance_id, "Completed", timeout=60)
        assert final["output"] == ["Hello before!", "opened", "Hello after!"]
        # The activity that was running when the host died ran again (at-least-once).
        assert len(trace_lines(trace, "wait_for_file.log")) == 2
        assert trace_lines(trace, "say_hello.log") == ["before", "after"]
    finally:
        assert second.stop() == 0


def test_message_in_flight_at_sigkill_is_redelivered_after_its_lock_expires(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    state = tmp_path / "state"
    env = {"HOST_TEST_TRACE_DIR": str(trace)}
    first = start_host(BASIC_APP, state, tmp_path / "logs", "--lock-duration", "2", env=env)
    assert (
        hostcli(
            "enqueue", "slow", "--body", "x", "--message-id", "inflight", "--state-dir", str(state)
        ).returncode
        == 0
    )
    wait_until(lambda: trace_lines(trace, "slow.log"), what="the first delivery")
    first.kill()
    second = start_host(BASIC_APP, state, tmp_path / "logs", "--lock-duration", "2", env=env)
    try:
        lines = wait_until(
            lambda: trace_lines(trace, "slow.log") if len(trace_lines(trace, "slow.log")) == 2 else None,
            timeout=30,
            what="the redelivery after restart",
        )
        assert lines == ["inflight 1", "inflight 2"]
        assert hostcli("dead-letters", "slow", "--state-dir", str(state)).stdout == ""
    finally:
        assert second.stop() == 0


def test_queued_messages_survive_a_restart(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    state = tmp_path / "state"
    env = {"HOST_TEST_TRACE_DIR": str(trace)}
    first = start_host(BASIC_APP, state, tmp_path / "logs", env=env)
    assert first.stop() == 0
    job_ids = [uuid.uuid4().hex[:10] for _ in range(3)]
    for job_id in job_ids:
        assert (
            hostcli(
                "enqueue", "jobs", "--body", json.dumps({"job_id": job_id}), "--state-dir", str(state)
            ).returncode
            == 0
        )
    second = start_host(BASIC_APP, state, tmp_path / "logs", env=env)
    try:
        for job_id in job_ids:
            assert second.wait_for_status(f"job-{job_id}", "Completed")["output"] == f"Hello {job_id}!"
    finally:
        assert second.stop() == 0


# --- the SDK's own client against the RPC routes


def test_sdk_durable_orchestration_client_against_the_rpc_routes(host: RunningHost) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    import azure.durable_functions as df
    from azure.durable_functions.models.utils import http_utils

    from devhost.triggers import ClientLinks

    status_kind = df.OrchestrationRuntimeStatus

    async def poll(client: df.DurableOrchestrationClient, instance_id: str, wanted: Any) -> Any:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = await client.get_status(instance_id)
            if status and status.runtime_status == wanted:
                return status
            await asyncio.sleep(0.05)
        raise AssertionError(f"{instance_id} never reached {wanted}")

    async def scenario() -> None:
        client = df.DurableOrchestrationClient(ClientLinks(host.base_url, HUB).binding_json())
        since = datetime.now(UTC) - timedelta(minutes=1)
        instance_id = await client.start_new("wait_for_approval", None, {"a": 1})
        running = await poll(client, instance_id, status_kind.Running)
        assert running.input_ == '{"a": 1}'
        assert running.custom_status == "waiting"
        await client.raise_event(instance_id, "Approval", {"ok": True})
        done = await poll(client, instance_id, status_kind.Completed)
        # The SDK double-encodes event data: the orchestrator received the JSON text (§6.5).
        assert done.output == {"approved": '{"ok": true}'}
        with_history = await client.get_status(instance_id, show_history=True, show_history_output=True)
        kinds = [event["EventType"] for event in with_history.historyEvents]
        assert kinds == ["ExecutionStarted", "EventRaised", "ExecutionCompleted"]

        named = f"sdk-{uuid.uuid4().hex[:8]}"
        assert await client.start_new("wait_for_approval", named) == named
        await poll(client, named, status_kind.Running)
        with pytest.raises(Exception, match="already exists"):
            await client.start_new("wait_for_approval", named)
        await client.suspend(named, "pause")
        await poll(client, named, status_kind.Suspended)
        await client.resume(named, "go on")
        await poll(client, named, status_kind.Running)
        await client.terminate(named, "stop it")
        terminated = await poll(client, named, status_kind.Terminated)
        assert terminated.output == "stop it"

        restarted = await client.restart(named, restart_with_new_instance_id=True)
        new_id = restarted["id"] if isinstance(restarted, dict) else restarted
        assert new_id != named
        await poll(client, new_id, status_kind.Running)
        await client.terminate(new_id, "done")
        await poll(client, new_id, status_kind.Terminated)

        terminated_only = [status_kind.Terminated]
        by_status = await client.get_status_by(created_time_from=since, runtime_status=terminated_only)
        assert {named, new_id} <= {s.instance_id for s in by_status}
        assert all(s.runtime_status == status_kind.Terminated for s in by_status)
        everything = await client.get_status_all()
        assert instance_id in {s.instance_id for s in everything}

        with pytest.raises(Exception, match="No instance with ID"):
            await client.raise_event(f"missing-{uuid.uuid4().hex}", "Approval", 1)
        assert not await client.get_status(f"missing-{uuid.uuid4().hex}")

        assert (await client.purge_instance_history(instance_id)).instances_deleted == 1
        assert (await client.purge_instance_history(instance_id)).instances_deleted == 0
        purged = await client.purge_instance_history_by(
            created_time_from=since, runtime_status=[status_kind.Terminated]
        )
        assert purged.instances_deleted >= 2
        assert not await client.get_status(named)
        session = http_utils._client_session
        if session is not None:
            await session.close()

    asyncio.run(scenario())
