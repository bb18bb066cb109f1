"""The local Service Bus queue store: peek-lock, delivery counts, dead letters, resubmit, sharing."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from devhost.queues import MAX_DELIVERY_COUNT_EXCEEDED, LockLostError, NewMessage, QueueStore


class ManualClock:
    """Wall time the test moves by hand, so lock expiry is decided without sleeping."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> QueueStore:
    return QueueStore(tmp_path, clock=clock)


def test_enqueue_then_receive_locks_and_counts_the_delivery(store: QueueStore) -> None:
    sent = store.enqueue("orders", NewMessage(b'{"a": 1}', message_id="m1", content_type="application/json",
                                              properties={"tenant": "x", "n": 3}))
    got = store.receive("orders", lock_seconds=30, max_delivery_count=10)
    assert got is not None
    assert (got.message_id, got.body, got.content_type) == ("m1", b'{"a": 1}', "application/json")
    assert got.properties == {"tenant": "x", "n": 3}
    assert got.delivery_count == 1
    assert got.lock_token and got.locked_until == got.enqueued_at + 30
    assert got.sequence_number == sent.sequence_number
    # Locked: nobody else receives it.
    assert store.receive("orders", lock_seconds=30, max_delivery_count=10) is None
    store.complete(got)
    assert store.active_messages("orders") == []


def test_queues_are_separate_and_fifo(store: QueueStore) -> None:
    for i in range(3):
        store.enqueue("a", NewMessage(f"a{i}".encode()))
    store.enqueue("b", NewMessage(b"b0"))
    bodies = []
    while (message := store.receive("a", lock_seconds=30, max_delivery_count=10)) is not None:
        bodies.append(message.body)
        store.complete(message)
    assert bodies == [b"a0", b"a1", b"a2"]
    assert [m.body for m in store.active_messages("b")] == [b"b0"]


def test_generated_message_ids_are_unique(store: QueueStore) -> None:
    ids = {store.enqueue("q", NewMessage(b"x")).message_id for _ in range(20)}
    assert len(ids) == 20


def test_abandon_redelivers_until_the_max_then_dead_letters_with_the_last_error(store: QueueStore) -> None:
    store.enqueue("q", NewMessage(b"poison", message_id="p1"))
    for attempt in range(1, 4):
        message = store.receive("q", lock_seconds=30, max_delivery_count=3)
        assert message is not None and message.delivery_count == attempt
        dead = store.abandon(message, error=f"ValueError: bad {attempt}", max_delivery_count=3)
        assert dead is (attempt == 3)
    assert store.receive("q", lock_seconds=30, max_delivery_count=3) is None
    [letter] = store.dead_letters("q")
    assert letter.message_id == "p1"
    assert letter.dead_letter_reason == MAX_DELIVERY_COUNT_EXCEEDED
    assert letter.dead_letter_error == "ValueError: bad 3"
    assert letter.delivery_count == 3


def test_expired_lock_returns_the_message_and_the_stale_holder_cannot_complete(
    store: QueueStore, clock: ManualClock
) -> None:
    store.enqueue("q", NewMessage(b"slow"))
    first = store.receive("q", lock_seconds=5, max_delivery_count=10)
    assert first is not None
    clock.now += 6
    second = store.receive("q", lock_seconds=5, max_delivery_count=10)
    assert second is not None and second.delivery_count == 2 and second.lock_token != first.lock_token
    with pytest.raises(LockLostError):
        store.complete(first)
    with pytest.raises(LockLostError):
        store.abandon(first, error="late", max_delivery_count=10)
    store.complete(second)
    assert store.active_messages("q") == []


def test_renewing_keeps_the_lock(store: QueueStore, clock: ManualClock) -> None:
    store.enqueue("q", NewMessage(b"long"))
    message = store.receive("q", lock_seconds=5, max_delivery_count=10)
    assert message is not None
    for _ in range(3):
        clock.now += 4
        store.renew_lock(message, lock_seconds=5)
    assert store.receive("q", lock_seconds=5, max_delivery_count=10) is None
    store.complete(message)
    clock.now += 10
    with pytest.raises(LockLostError):
        store.renew_lock(message, lock_seconds=5)


def test_lock_expiring_on_the_last_delivery_dead_letters_it(store: QueueStore, clock: ManualClock) -> None:
    store.enqueue("q", NewMessage(b"hangs", message_id="h"))
    message = store.receive("q", lock_seconds=5, max_delivery_count=1)
    assert message is not None
    clock.now += 6
    assert store.receive("q", lock_seconds=5, max_delivery_count=1) is None
    [letter] = store.dead_letters("q")
    assert letter.dead_letter_reason == MAX_DELIVERY_COUNT_EXCEEDED
    assert "lock expired" in (letter.dead_letter_error or "")


def test_resubmit_moves_dead_letters_back_with_a_fresh_delivery_count(
    store: QueueStore, clock: ManualClock
) -> None:
    for message_id in ("d1", "d2"):
        store.enqueue("q", NewMessage(message_id.encode(), message_id=message_id, properties={"k": "v"}))
        message = store.receive("q", lock_seconds=5, max_delivery_count=1)
        assert message is not None
        store.abandon(message, error="boom", max_delivery_count=1)
    assert [m.message_id for m in store.dead_letters("q")] == ["d1", "d2"]
    clock.now += 100
    moved = store.resubmit("q", "d2")
    assert [m.message_id for m in moved] == ["d2"]
    assert [m.message_id for m in store.dead_letters("q")] == ["d1"]
    again = store.receive("q", lock_seconds=5, max_delivery_count=1)
    assert again is not None
    assert (again.message_id, again.delivery_count, again.properties) == ("d2", 1, {"k": "v"})
    assert again.enqueued_at == clock.now
    assert store.resubmit("q", "nope") == []
    assert [m.message_id for m in store.resubmit("q")] == ["d1"]


def test_binary_body_round_trips(store: QueueStore) -> None:
    body = bytes(range(256))
    store.enqueue("q", NewMessage(body))
    message = store.receive("q", lock_seconds=5, max_delivery_count=1)
    assert message is not None and message.body == body


def test_invalid_queue_name_and_unstorable_property_are_refused(store: QueueStore) -> None:
    with pytest.raises(ValueError, match="invalid queue name"):
        store.enqueue("bad name!", NewMessage(b"x"))
    with pytest.raises(TypeError):
        store.enqueue("q", NewMessage(b"x", properties={"o": object()}))
    assert store.active_messages("q") == []


def _enqueue_many(state_dir: str, prefix: str, count: int) -> None:
    store = QueueStore(Path(state_dir))
    for i in range(count):
        store.enqueue("shared", NewMessage(f"{prefix}{i}".encode()))


def _receive_all(state_dir: str, result: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = QueueStore(Path(state_dir))
    seen: list[str] = []
    idle = 0
    while idle < 50:
        message = store.receive("shared", lock_seconds=60, max_delivery_count=10)
        if message is None:
            idle += 1
            continue
        idle = 0
        seen.append(message.body.decode())
        store.complete(message)
    result.put(seen)


def test_several_processes_share_the_store_without_losing_or_doubling_messages(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    senders = [context.Process(target=_enqueue_many, args=(str(tmp_path), p, 40)) for p in ("x", "y")]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(timeout=60)
        assert sender.exitcode == 0
    results: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    receivers = [context.Process(target=_receive_all, args=(str(tmp_path), results)) for _ in range(3)]
    for receiver in receivers:
        receiver.start()
    seen = [body for _ in receivers for body in results.get(timeout=60)]
    for receiver in receivers:
        receiver.join(timeout=60)
    assert sorted(seen) == sorted([f"x{i}" for i in range(40)] + [f"y{i}" for i in range(40)])
