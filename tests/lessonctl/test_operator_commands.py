"""`lessonctl enqueue|status|cancel|retry` as real subprocesses against a running stack (PostgreSQL
fixture, `python -m sandbox`, `python -m devhost start` on this app): exit codes and output."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.queues import QueueStore
from tests.e2e.stack import Stack, free_port, start_stack, wait_until
from tests.lessonctl.conftest import run_lessonctl

pytestmark = pytest.mark.slow

AI = ("deepseek", "groq", "gemini")


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(database_url, tmp_path_factory.mktemp("operator"))


@pytest.fixture
def slow_ai(stack: Stack) -> Iterator[None]:
    """Every AI call takes 3 s, so a run stays in progress long enough to be cancelled."""
    for provider in AI:
        stack.latency(provider, 3000, 3000)
    yield
    for provider in AI:
        stack.latency(provider, 0, 0)


def env_for(stack: Stack, *, with_host: bool = True) -> dict[str, str]:
    env = {"DATABASE_URL": stack.database_url}
    if with_host:
        env["DURABLE_MANAGEMENT_URL"] = stack.host.base_url
    return env


def lessonctl(stack: Stack, cwd: Path, *args: str, with_host: bool = True):  # type: ignore[no-untyped-def]
    return run_lessonctl(*args, env=env_for(stack, with_host=with_host), cwd=cwd)


def enqueue_local(stack: Stack, cwd: Path, module_id: str, *extra: str) -> str:
    state_dir = str(stack.host.state_dir)
    done = lessonctl(stack, cwd, "enqueue", module_id, "--local", "--state-dir", state_dir, *extra)
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_in_progress(stack: Stack, module_id: str) -> None:
    wait_until(lambda: stack.generation(module_id)["status"] == "in_progress", timeout=60,
               what=f"module {module_id} in_progress")


def test_enqueue_local_then_status_watch_follows_the_run_to_completed(
    stack: Stack, workdir: Path, slow_ai: None
) -> None:
    module_id = stack.create_module("Kubernetes basics", "Pods, deployments and services")
    out = enqueue_local(stack, workdir, module_id, "--difficulty", "advanced", "--learning-style", "visual",
                        "--request-id", "op-watch-1")
    assert "sent message op-watch-1 to the devhost's local queue lesson-generation" in out

    watched = lessonctl(stack, workdir, "status", module_id, "--watch", "--request", "op-watch-1",
                        "--interval", "0.2", "--timeout", "120")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    lines = watched.stdout.splitlines()
    block = lines.index(f"module     {module_id}  'Kubernetes basics'")
    stages = [line.split(":", 1)[0] for line in lines[:block]]
    # One line per change while watching (not a terminal), then the final block.
    assert "generating" in stages, watched.stdout
    assert stages[-1] == "completed", watched.stdout
    assert "status     completed" in lines
    assert lines[-1] == "request    op-watch-1: completed"
    assert "request op-watch-1" in watched.stdout
    assert "progress   stage completed; lessons " in watched.stdout
    runs = stack.sql("SELECT difficulty, learning_style FROM lo_generation_runs "
                     "WHERE request_id = 'op-watch-1'")
    assert [tuple(row) for row in runs] == [("advanced", "visual")]

    # The same request id again is a redelivery: no new run.
    enqueue_local(stack, workdir, module_id, "--request-id", "op-watch-1")
    queue = QueueStore(stack.host.state_dir)
    wait_until(lambda: not queue.active_messages("lesson-generation"), timeout=60, what="the queue to drain")
    assert len(stack.sql("SELECT 1 FROM lo_generation_runs WHERE module_id = $1", uuid.UUID(module_id))) == 1


def test_status_exit_codes_and_progress_notes(stack: Stack, workdir: Path) -> None:
    unknown = lessonctl(stack, workdir, "status", str(uuid.uuid4()))
    assert unknown.returncode == 2
    assert "does not exist in lessons_module" in unknown.stderr

    fresh = stack.create_module("Never requested")
    waiting = lessonctl(stack, workdir, "status", fresh)
    assert waiting.returncode == 3
    assert "status     not_started" in waiting.stdout
    assert "no generation was requested yet" in waiting.stdout
    not_seen = lessonctl(stack, workdir, "status", fresh, "--request", "never-sent")
    assert not_seen.returncode == 3
    assert "request    never-sent: not picked up yet" in not_seen.stdout
    timed_out = lessonctl(stack, workdir, "status", fresh, "--request", "never-sent", "--watch",
                          "--interval", "0.1", "--timeout", "0.5")
    assert timed_out.returncode == 3
    assert "waiting: the request is not picked up yet" in timed_out.stdout

    done_id = stack.create_module("Git rebase")
    enqueue_local(stack, workdir, done_id)
    stack.wait_for_module(done_id, "completed", "failed")
    without_host = lessonctl(stack, workdir, "status", done_id, with_host=False)
    assert without_host.returncode == 0
    assert "orchestration progress needs --host-url or DURABLE_MANAGEMENT_URL" in without_host.stdout
    closed = f"http://127.0.0.1:{free_port()}"
    unreachable = lessonctl(stack, workdir, "status", done_id, "--host-url", closed)
    assert unreachable.returncode == 0
    assert "orchestration progress unavailable" in unreachable.stdout

    no_database = run_lessonctl("status", done_id, env={}, cwd=workdir)
    assert no_database.returncode == 4
    assert "DATABASE_URL is missing" in no_database.stderr


def test_cancel_marks_the_run_failed_and_terminates_the_orchestration_then_retry_regenerates(
    stack: Stack, workdir: Path, slow_ai: None
) -> None:
    module_id = stack.create_module("Rust lifetimes")
    enqueue_local(stack, workdir, module_id, "--difficulty", "intermediate")
    wait_in_progress(stack, module_id)

    cancelled = lessonctl(stack, workdir, "cancel", module_id, "--reason", "wrong topic")
    assert cancelled.returncode == 0, cancelled.stderr
    assert "marked failed: cancelled by operator: wrong topic" in cancelled.stdout
    assert f"orchestration module-{module_id} terminated on {stack.host.base_url}" in cancelled.stdout
    final = stack.wait_for_instance(f"module-{module_id}", "Terminated", timeout=60)
    assert final["output"] == "cancelled by operator: wrong topic"

    status = lessonctl(stack, workdir, "status", module_id)
    assert status.returncode == 1
    assert "error      cancelled by operator: wrong topic" in status.stdout
    assert stack.lessons(module_id) == []

    again = lessonctl(stack, workdir, "cancel", module_id)
    assert again.returncode == 3
    assert "is failed: nothing to cancel" in again.stderr

    retried = lessonctl(stack, workdir, "retry", module_id, "--local",
                        "--state-dir", str(stack.host.state_dir))
    assert retried.returncode == 0, retried.stderr
    assert "failed: cancelled by operator: wrong topic" in retried.stdout
    assert "retry requested as lessonctl-" in retried.stdout

    def runs() -> list[tuple[str, str]]:
        rows = stack.sql("SELECT difficulty, status FROM lo_generation_runs WHERE module_id = $1 "
                         "ORDER BY requested_at", uuid.UUID(module_id))
        return [(row["difficulty"], row["status"]) for row in rows]

    # The module stays `failed` until the retry's message is picked up: wait for the second run to end.
    wait_until(lambda: len(runs()) == 2 and runs()[1][1] in ("completed", "failed"), timeout=120,
               what="the retried run to end")
    assert runs() == [("intermediate", "failed"), ("intermediate", "completed")]
    assert stack.generation(module_id)["status"] == "completed"


def test_cancel_without_a_host_url_fences_the_run_that_keeps_going(
    stack: Stack, workdir: Path, slow_ai: None
) -> None:
    module_id = stack.create_module("SQL window functions")
    enqueue_local(stack, workdir, module_id)
    wait_in_progress(stack, module_id)

    cancelled = lessonctl(stack, workdir, "cancel", module_id, with_host=False)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "not terminated (no --host-url or DURABLE_MANAGEMENT_URL)" in cancelled.stdout
    # The orchestration runs to its end, but its final write is fenced off: no lessons, still failed.
    stack.wait_for_instance(f"module-{module_id}", "Completed", "Failed", timeout=120)
    state = stack.generation(module_id)
    assert state["status"] == "failed"
    assert state["error"] == "cancelled by operator"
    assert stack.lessons(module_id) == []


def test_retry_and_cancel_refuse_unknown_and_finished_modules(stack: Stack, workdir: Path) -> None:
    unknown = str(uuid.uuid4())
    assert lessonctl(stack, workdir, "retry", unknown, "--local").returncode == 2
    assert lessonctl(stack, workdir, "cancel", unknown).returncode == 2
    fresh = stack.create_module("Not failed")
    refused = lessonctl(stack, workdir, "retry", fresh, "--local", "--state-dir", str(stack.host.state_dir))
    assert refused.returncode == 1
    assert "is not_started, not failed: nothing to retry" in refused.stderr
    assert stack.sql("SELECT 1 FROM lo_generation_runs WHERE module_id = $1", uuid.UUID(fresh)) == []


def test_enqueue_refuses_bad_requests_and_reports_transport_errors(stack: Stack, workdir: Path) -> None:
    bad_id = run_lessonctl("enqueue", "not-a-uuid", "--local", cwd=workdir)
    assert bad_id.returncode == 2
    assert "module_id" in bad_id.stderr
    bad_difficulty = run_lessonctl("enqueue", str(uuid.uuid4()), "--difficulty", "wizard", cwd=workdir)
    assert bad_difficulty.returncode == 2
    assert "invalid choice: 'wizard'" in bad_difficulty.stderr

    no_folder = run_lessonctl("enqueue", str(uuid.uuid4()), "--local", cwd=workdir)
    assert no_folder.returncode == 1
    assert "no devhost state folder" in no_folder.stderr
    assert not (workdir / ".devhost").exists()

    no_connection = run_lessonctl("enqueue", str(uuid.uuid4()), cwd=workdir)
    assert no_connection.returncode == 1
    assert "AzureServiceBusConnectionString is missing" in no_connection.stderr
    assert "use --local" in no_connection.stderr

    # A Service Bus endpoint nobody listens on (the real one is Azure's; this is what a wrong address does).
    key = "Sentinel-SAS-Key-4b1d9e"
    connection = (f"Endpoint=sb://127.0.0.1:{free_port()};SharedAccessKeyName=RootManageSharedAccessKey;"
                  f"SharedAccessKey={key};UseDevelopmentEmulator=true;")
    unreachable = run_lessonctl("enqueue", str(uuid.uuid4()),
                                env={"AzureServiceBusConnectionString": connection}, cwd=workdir)
    assert unreachable.returncode == 1
    assert "sending to queue 'lesson-generation' failed: ServiceBusConnectionError" in unreachable.stderr
    assert key not in unreachable.stderr + unreachable.stdout


def test_enqueue_local_body_is_the_documented_message(stack: Stack, workdir: Path) -> None:
    """What `enqueue --local` puts on the queue is exactly what a web app would send (read back raw)."""
    folder = workdir / "state"
    module_id = str(uuid.uuid4())
    done = run_lessonctl("enqueue", module_id, "--local", "--state-dir", str(folder),
                         "--difficulty", "beginner", "--request-id", "op-body", cwd=workdir)
    assert done.returncode == 0, done.stderr
    [message] = QueueStore(folder).active_messages("lesson-generation")
    body = json.loads(message.body)
    assert message.message_id == "op-body"
    assert message.content_type == "application/json"
    assert {k: body[k] for k in ("module_id", "request_id", "difficulty")} == {
        "module_id": module_id, "request_id": "op-body", "difficulty": "beginner"}
    assert "timestamp" in body
