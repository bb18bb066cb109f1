"""The completion webhook end to end: a signed POST per finished run; a broken receiver changes nothing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from clients.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.e2e.stack import Stack, start_stack, wait_until

pytestmark = pytest.mark.slow
SECRET = "Sentinel-Webhook-Secret-e2e-9d1"


class Receiver:
    """A loopback web app endpoint that records each call and answers with `status`."""

    def __init__(self) -> None:
        self.status = 204
        self.calls: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.calls.append((dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/lessons"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies_for(self, module_id: str) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.calls if json.loads(body)["module_id"] == module_id]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Stack]:
    env = {"COMPLETION_WEBHOOK_URL": receiver.url, "COMPLETION_WEBHOOK_SECRET": SECRET}
    yield from start_stack(database_url, tmp_path_factory.mktemp("webhook"), extra_env=env)


def test_a_completed_run_is_announced_with_a_verifiable_signature(stack: Stack, receiver: Receiver) -> None:
    receiver.status = 204
    module_id = stack.create_module("Vue composition API")
    stack.enqueue({"module_id": module_id, "request_id": "hook-1"})
    state = stack.wait_for_module(module_id, "completed", "failed")
    bodies = wait_until(lambda: receiver.bodies_for(module_id), timeout=30, what="the webhook call")
    assert bodies == [{
        "module_id": module_id, "request_id": "hook-1", "status": "completed", "error": None,
        "lessons": state["lessons"], "completed_at": bodies[0]["completed_at"],
    }]
    headers, raw = next((h, b) for h, b in receiver.calls if json.loads(b)["module_id"] == module_id)
    assert verify(SECRET, headers[TIMESTAMP_HEADER], raw, headers[SIGNATURE_HEADER], now=time.time())
    assert SECRET not in stack.host.stderr()


def test_a_failing_receiver_is_retried_and_never_changes_the_status(stack: Stack, receiver: Receiver) -> None:
    receiver.status = 500
    module_id = stack.create_module("Flutter layouts")
    stack.enqueue({"module_id": module_id})
    stack.wait_for_module(module_id, "completed", "failed")
    status = stack.wait_for_instance(f"module-{module_id}", "Completed", "Failed", timeout=120)
    assert len(receiver.bodies_for(module_id)) == 4  # every attempt of the client's retry policy
    assert status["output"]["status"] == "completed"
    assert status["output"]["notification"]["delivered"] is False
    assert stack.generation(module_id)["status"] == "completed"
