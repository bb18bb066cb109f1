"""`enqueue`, `dead-letters` and `resubmit` through the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from devhost.queues import QueueStore

REPO = Path(__file__).resolve().parents[2]


def hostcli(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devhost.hostcli", *args, "--state-dir", str(state_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )


def test_enqueue_prints_the_id_and_stores_body_type_and_properties(tmp_path: Path) -> None:
    done = hostcli("enqueue", "jobs", "--body", '{"n": 1}', "--content-type", "application/json",
                   "--property", "tenant=acme", "--property", "empty=", state_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    message_id = done.stdout.strip()
    assert len(message_id) == 32
    [stored] = QueueStore(tmp_path).active_messages("jobs")
    assert (stored.message_id, stored.body) == (message_id, b'{"n": 1}')
    assert stored.content_type == "application/json"
    assert stored.properties == {"tenant": "acme", "empty": ""}


def test_enqueue_body_file_keeps_bytes_and_given_message_id(tmp_path: Path) -> None:
    body_file = tmp_path / "body.bin"
    body_file.write_bytes(b"\x00\xffraw")
    done = hostcli("enqueue", "jobs", "--body-file", str(body_file), "--message-id", "mine",
                   state_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "mine"
    [stored] = QueueStore(tmp_path).active_messages("jobs")
    assert stored.body == b"\x00\xffraw"


def test_enqueue_bad_input_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    bad_property = hostcli("enqueue", "jobs", "--body", "x", "--property", "novalue", state_dir=tmp_path)
    assert bad_property.returncode == 2 and "KEY=VALUE" in bad_property.stderr
    missing_file = hostcli("enqueue", "jobs", "--body-file", str(tmp_path / "nope"), state_dir=tmp_path)
    assert missing_file.returncode == 2 and "cannot read" in missing_file.stderr
    bad_queue = hostcli("enqueue", "bad queue", "--body", "x", state_dir=tmp_path)
    assert bad_queue.returncode == 2 and "invalid queue name" in bad_queue.stderr
    both = hostcli("enqueue", "jobs", "--body", "x", "--body-file", "f", state_dir=tmp_path)
    assert both.returncode == 2
    assert QueueStore(tmp_path).active_messages("jobs") == []


def _dead_letter(store: QueueStore, queue: str, body: bytes, message_id: str, error: str) -> None:
    from devhost.queues import NewMessage

    store.enqueue(queue, NewMessage(body, message_id=message_id))
    message = store.receive(queue, lock_seconds=30, max_delivery_count=1)
    assert message is not None
    assert store.abandon(message, error=error, max_delivery_count=1)


def test_dead_letters_lists_json_lines_and_resubmit_moves_them_back(tmp_path: Path) -> None:
    store = QueueStore(tmp_path)
    _dead_letter(store, "jobs", b'{"ok": false}', "text-1", "ValueError: nope")
    _dead_letter(store, "jobs", b"\xff\xfe", "bin-1", "UnicodeDecodeError: bad byte")
    listed = hostcli("dead-letters", "jobs", state_dir=tmp_path)
    assert listed.returncode == 0, listed.stderr
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["message_id"] for r in records] == ["text-1", "bin-1"]
    assert records[0]["body"] == '{"ok": false}' and "body_base64" not in records[0]
    assert records[1]["body_base64"] == "//4=" and "body" not in records[1]
    assert {r["reason"] for r in records} == {"MaxDeliveryCountExceeded"}
    assert records[0]["error"] == "ValueError: nope"
    assert records[0]["delivery_count"] == 1
    assert records[0]["enqueued_time_utc"].endswith("Z")

    unknown = hostcli("resubmit", "jobs", "--message-id", "nope", state_dir=tmp_path)
    assert unknown.returncode == 1 and "no dead letter" in unknown.stderr
    one = hostcli("resubmit", "jobs", "--message-id", "bin-1", state_dir=tmp_path)
    assert one.returncode == 0 and one.stdout.split() == ["bin-1"]
    assert [m.message_id for m in store.active_messages("jobs")] == ["bin-1"]
    rest = hostcli("resubmit", "jobs", "--all", state_dir=tmp_path)
    assert rest.returncode == 0 and rest.stdout.split() == ["text-1"]
    assert hostcli("dead-letters", "jobs", state_dir=tmp_path).stdout == ""


def test_enqueue_without_state_dir_outside_an_app_folder_is_refused(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "devhost.hostcli", "enqueue", "jobs", "--body", "x"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2
    assert "not a function app folder" in done.stderr
    assert not (tmp_path / ".devhost").exists()
    (tmp_path / "host.json").write_text('{"version": "2.0"}', encoding="utf-8")
    inside_app = subprocess.run([sys.executable, "-m", "devhost.hostcli", "enqueue", "jobs", "--body", "x"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=60,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
    assert inside_app.returncode == 0, inside_app.stderr
    [stored] = QueueStore(tmp_path / ".devhost").active_messages("jobs")
    assert stored.message_id == inside_app.stdout.strip()


def test_reading_a_missing_state_folder_says_where_it_looked(tmp_path: Path) -> None:
    done = hostcli("dead-letters", "jobs", state_dir=tmp_path / "absent")
    assert done.returncode == 1 and "no devhost state folder" in done.stderr
    assert not (tmp_path / "absent").exists()
