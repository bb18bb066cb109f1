"""Local persistent Service Bus queues: peek-lock, delivery count, dead-letter sub-queue.

One SQLite file (`queues.sqlite` in the state dir) holds every queue. It is shared by processes:
the CLI enqueues while a host pumps, so every operation is one short transaction (WAL mode,
busy timeout) and a lock is a token plus an expiry time stored with the message, exactly the
peek-lock contract of Service Bus: whoever holds a live token may complete or abandon it;
an expired lock makes the message receivable again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

QUEUE_DB_NAME = "queues.sqlite"
MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"
DEFAULT_TIME_TO_LIVE_SECONDS = 14 * 24 * 3600  # Service Bus default for a new queue (14 days)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    sequence_number INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT,
    correlation_id TEXT,
    subject TEXT,
    properties TEXT NOT NULL,
    enqueued_at REAL NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    lock_token TEXT,
    locked_until REAL,
    dead_lettered INTEGER NOT NULL DEFAULT 0,
    dead_letter_reason TEXT,
    dead_letter_error TEXT,
    dead_lettered_at REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, dead_lettered, sequence_number);
"""


class LockLostError(RuntimeError):
    """The lock token is no longer valid (expired and possibly taken by another receiver)."""


@dataclass(frozen=True)
class QueueMessage:
    """One message as stored; `lock_token`/`locked_until` are set while it is locked."""

    queue: str
    sequence_number: int
    message_id: str
    body: bytes
    content_type: str | None
    correlation_id: str | None
    subject: str | None
    properties: dict[str, Any]
    enqueued_at: float
    delivery_count: int
    lock_token: str | None = None
    locked_until: float | None = None
    dead_letter_reason: str | None = None
    dead_letter_error: str | None = None
    dead_lettered_at: float | None = None
    last_error: str | None = None

    @property
    def enqueued_time_utc(self) -> datetime:
        return datetime.fromtimestamp(self.enqueued_at, tz=UTC)

    @property
    def locked_until_utc(self) -> datetime | None:
        return None if self.locked_until is None else datetime.fromtimestamp(self.locked_until, tz=UTC)


@dataclass(frozen=True)
class NewMessage:
    """What a sender provides; the body is taken as given (never validated)."""

    body: bytes
    message_id: str | None = None
    content_type: str | None = None
    correlation_id: str | None = None
    subject: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)


def utc_iso(timestamp: float) -> str:
    """Service Bus style UTC time text with microseconds and a Z."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class QueueStore:
    """All local queues of one state dir. Safe to use from several processes at once."""

    def __init__(self, state_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / QUEUE_DB_NAME
        self._now = clock
        self.state_dir.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        try:
            db.execute("PRAGMA journal_mode=WAL")  # persistent: readers never block the writer
            db.executescript(_SCHEMA)
        finally:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA busy_timeout=30000")
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # A fresh connection per operation keeps the store usable from worker threads and other
        # processes; BEGIN IMMEDIATE takes the write lock up front so two receivers never lock
        # the same message.
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    # -- sending -------------------------------------------------------------------------------

    def enqueue(self, queue: str, message: NewMessage) -> QueueMessage:
        _check_queue_name(queue)
        message_id = message.message_id or uuid.uuid4().hex
        properties = dict(message.properties)
        json.dumps(properties)  # fail now, not at delivery, if a property cannot be stored
        now = self._now()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO messages (queue, message_id, body, content_type, correlation_id, subject,"
                " properties, enqueued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    queue,
                    message_id,
                    bytes(message.body),
                    message.content_type,
                    message.correlation_id,
                    message.subject,
                    json.dumps(properties),
                    now,
                ),
            )
            sequence_number = int(cursor.lastrowid or 0)
        return QueueMessage(
            queue,
            sequence_number,
            message_id,
            bytes(message.body),
            message.content_type,
            message.correlation_id,
            message.subject,
            properties,
            now,
            0,
        )

    # -- peek-lock receiving ----------------------------------------------------------------------

    def receive(self, queue: str, *, lock_seconds: float, max_delivery_count: int) -> QueueMessage | None:
        """Locks the oldest available message and counts the delivery; None when the queue is empty.

        A message whose lock expired after its last allowed delivery is dead-lettered here, as
        Service Bus does when the lock of the final delivery runs out.
        """
        now = self._now()
        if not self._has_receivable(queue, now):
            return None  # the common idle case: a read, no write lock
        with self._transaction() as db:
            while True:
                row = db.execute(
                    f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND dead_lettered = 0"
                    " AND (locked_until IS NULL OR locked_until <= ?) ORDER BY sequence_number LIMIT 1",
                    (queue, now),
                ).fetchone()
                if row is None:
                    return None
                message = _row_to_message(row)
                last_error = _lock_expired_text(message) or message.last_error
                if message.delivery_count >= max_delivery_count:
                    _dead_letter(
                        db,
                        message.sequence_number,
                        MAX_DELIVERY_COUNT_EXCEEDED,
                        last_error or "delivered too many times",
                        now,
                    )
                    continue
                token = str(uuid.uuid4())
                locked_until = now + lock_seconds
                db.execute(
                    "UPDATE messages SET lock_token = ?, locked_until = ?,"
                    " delivery_count = delivery_count + 1, last_error = ? WHERE sequence_number = ?",
                    (token, locked_until, last_error, message.sequence_number),
                )
                return replace(
                    message,
                    lock_token=token,
                    locked_until=locked_until,
                    delivery_count=message.delivery_count + 1,
                    last_error=last_error,
                )

    def _has_receivable(self, queue: str, now: float) -> bool:
        db = self._connect()
        try:
            row = db.execute(
                "SELECT 1 FROM messages WHERE queue = ? AND dead_lettered = 0"
                " AND (locked_until IS NULL OR locked_until <= ?) LIMIT 1",
                (queue, now),
            ).fetchone()
        finally:
            db.close()
        return row is not None

    def renew_lock(self, message: QueueMessage, *, lock_seconds: float) -> float:
        now = self._now()
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE messages SET locked_until = ? WHERE sequence_number = ? AND lock_token = ?"
                " AND locked_until > ?",
                (now + lock_seconds, message.sequence_number, message.lock_token, now),
            )
            if cursor.rowcount != 1:
                raise LockLostError(_lock_lost_text(message))
        return now + lock_seconds

    def complete(self, message: QueueMessage) -> None:
        now = self._now()
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM messages WHERE sequence_number = ? AND lock_token = ? AND locked_until > ?",
                (message.sequence_number, message.lock_token, now),
            )
            if cursor.rowcount != 1:
                raise LockLostError(_lock_lost_text(message))

    def abandon(self, message: QueueMessage, *, error: str, max_delivery_count: int) -> bool:
        """Releases the lock after a failed delivery; True when the message went to the dead letters."""
        now = self._now()
        with self._transaction() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE sequence_number = ? AND lock_token = ?"
                " AND locked_until > ?",
                (message.sequence_number, message.lock_token, now),
            ).fetchone()
            if row is None:
                raise LockLostError(_lock_lost_text(message))
            current = _row_to_message(row)
            if current.delivery_count >= max_delivery_count:
                _dead_letter(db, current.sequence_number, MAX_DELIVERY_COUNT_EXCEEDED, error, now)
                return True
            db.execute(
                "UPDATE messages SET lock_token = NULL, locked_until = NULL, last_error = ?"
                " WHERE sequence_number = ?",
                (error, current.sequence_number),
            )
            return False

    # -- inspection and the dead-letter sub-queue -----------------------------------------------

    def active_messages(self, queue: str) -> list[QueueMessage]:
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND dead_lettered = 0"
                " ORDER BY sequence_number",
                (queue,),
            ).fetchall()
        return [_row_to_message(row) for row in rows]

    def dead_letters(self, queue: str) -> list[QueueMessage]:
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND dead_lettered = 1"
                " ORDER BY sequence_number",
                (queue,),
            ).fetchall()
        return [_row_to_message(row) for row in rows]

    def resubmit(self, queue: str, message_id: str | None = None) -> list[QueueMessage]:
        """Moves dead letters back to the queue as new messages (same id, body and properties).

        `message_id=None` resubmits them all. Like a resend from the dead-letter sub-queue they get
        a new sequence number, a new enqueued time and a delivery count of 0.
        """
        now = self._now()
        moved: list[QueueMessage] = []
        with self._transaction() as db:
            query = f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND dead_lettered = 1"
            args: tuple[Any, ...] = (queue,)
            if message_id is not None:
                query += " AND message_id = ?"
                args += (message_id,)
            for row in db.execute(query + " ORDER BY sequence_number", args).fetchall():
                old = _row_to_message(row)
                db.execute("DELETE FROM messages WHERE sequence_number = ?", (old.sequence_number,))
                cursor = db.execute(
                    "INSERT INTO messages (queue, message_id, body, content_type, correlation_id, subject,"
                    " properties, enqueued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        queue,
                        old.message_id,
                        old.body,
                        old.content_type,
                        old.correlation_id,
                        old.subject,
                        json.dumps(old.properties),
                        now,
                    ),
                )
                moved.append(
                    QueueMessage(
                        queue,
                        int(cursor.lastrowid or 0),
                        old.message_id,
                        old.body,
                        old.content_type,
                        old.correlation_id,
                        old.subject,
                        old.properties,
                        now,
                        0,
                    )
                )
        return moved

    def queue_names(self) -> list[str]:
        with self._transaction() as db:
            rows = db.execute("SELECT DISTINCT queue FROM messages ORDER BY queue").fetchall()
        return [str(row[0]) for row in rows]


_COLUMNS = (
    "queue, sequence_number, message_id, body, content_type, correlation_id, subject, properties,"
    " enqueued_at, delivery_count, lock_token, locked_until, dead_letter_reason, dead_letter_error,"
    " dead_lettered_at, last_error"
)


def _row_to_message(row: tuple[Any, ...]) -> QueueMessage:
    return QueueMessage(
        queue=row[0],
        sequence_number=int(row[1]),
        message_id=row[2],
        body=bytes(row[3]),
        content_type=row[4],
        correlation_id=row[5],
        subject=row[6],
        properties=json.loads(row[7]),
        enqueued_at=float(row[8]),
        delivery_count=int(row[9]),
        lock_token=row[10],
        locked_until=row[11],
        dead_letter_reason=row[12],
        dead_letter_error=row[13],
        dead_lettered_at=row[14],
        last_error=row[15],
    )


def _dead_letter(db: sqlite3.Connection, sequence_number: int, reason: str, error: str, now: float) -> None:
    db.execute(
        "UPDATE messages SET dead_lettered = 1, dead_letter_reason = ?, dead_letter_error = ?,"
        " dead_lettered_at = ?, lock_token = NULL, locked_until = NULL, last_error = ?"
        " WHERE sequence_number = ?",
        (reason, error, now, error, sequence_number),
    )


def _lock_expired_text(message: QueueMessage) -> str | None:
    # A locked message that is receivable again lost its lock: remember why, in case this
    # becomes the reason it is dead-lettered later.
    if message.lock_token is not None:
        return "the message lock expired while the function was running"
    return None


def _lock_lost_text(message: QueueMessage) -> str:
    return (
        f"The lock supplied for message {message.message_id} (sequence {message.sequence_number}) "
        "is invalid: it expired or the message was received by another receiver."
    )


def _check_queue_name(queue: str) -> None:
    # Service Bus entity names: letters, digits, periods, hyphens, underscores, slashes; 1-260 chars.
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_/")
    if not queue or len(queue) > 260 or not set(queue) <= allowed:
        raise ValueError(f"invalid queue name {queue!r}: use 1-260 letters, digits, '.', '-', '_' or '/'")


# ---------------------------------------------------------------------------------------------- delivery


@dataclass(frozen=True)
class PumpSettings:
    """How a queue trigger receives: Service Bus queue properties + host.json serviceBus options."""

    max_delivery_count: int = 10
    lock_seconds: float = 60.0
    # host.json maxAutoLockRenewalDuration: the host renews the lock while the function runs, up to this.
    max_lock_renewal: timedelta = timedelta(minutes=5)
    max_concurrent_calls: int = 16
    idle_poll_seconds: float = 0.2
    stop_grace_seconds: float = 10.0


# (function, func.ServiceBusMessage-to-be, message id) -> awaitable result; raises on failure.
Handler = Callable[[Any, Any, str], Awaitable[Any]]


class QueuePump:
    """Feeds one Service Bus-triggered function from its local queue, like the extension's processor.

    Peek-lock receive, up to `max_concurrent_calls` invocations at once, lock renewal while the
    function runs (up to `max_lock_renewal`), complete on success, abandon on exception (dead
    letter after the max delivery count). No message can crash the pump: every failure path ends
    in complete, abandon or an expired lock.
    """

    def __init__(
        self,
        store: QueueStore,
        function: Any,
        queue: str,
        settings: PumpSettings,
        handler: Handler,
        *,
        logger: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.function = function
        self.queue = queue
        self.settings = settings
        self.handler = handler
        self.log = logger or logging.getLogger("devhost.queues")
        self._stop = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.max_concurrent_calls)
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._receive_loop())

    def request_stop(self) -> None:
        self._stop.set()

    async def wait_stopped(self) -> None:
        if self._loop_task is not None:
            await self._loop_task
        if self._inflight:
            _done, pending = await asyncio.wait(self._inflight, timeout=self.settings.stop_grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _receive_loop(self) -> None:
        while not self._stop.is_set():
            await self._slots.acquire()
            try:
                message = await asyncio.to_thread(
                    self.store.receive,
                    self.queue,
                    lock_seconds=self.settings.lock_seconds,
                    max_delivery_count=self.settings.max_delivery_count,
                )
            except Exception as exc:  # a locked/corrupt store must not end the pump
                self._slots.release()
                self.log.error("queue '%s': receive failed: %s", self.queue, exc)
                await self._idle()
                continue
            if message is None:
                self._slots.release()
                await self._idle()
                continue
            task = asyncio.get_running_loop().create_task(self._deliver(message))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _idle(self) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=self.settings.idle_poll_seconds)

    async def _deliver(self, message: QueueMessage) -> None:
        renewer = asyncio.get_running_loop().create_task(self._renew(message))
        try:
            try:
                from devhost.triggers import build_service_bus_message

                await self.handler(self.function, build_service_bus_message(message), message.message_id)
            except asyncio.CancelledError:
                await self._settle(
                    self.store.abandon,
                    message,
                    error="the host stopped while the function ran",
                    max_delivery_count=10**9,
                )
                raise
            except Exception as exc:
                await self._abandon(message, f"{type(exc).__name__}: {exc}")
                return
            await self._settle(self.store.complete, message)
        finally:
            renewer.cancel()
            self._slots.release()

    async def _abandon(self, message: QueueMessage, error: str) -> None:
        dead = await self._settle(
            self.store.abandon, message, error=error, max_delivery_count=self.settings.max_delivery_count
        )
        if dead:
            self.log.error(
                "queue '%s': message %s dead-lettered (%s after %d deliveries): %s",
                self.queue,
                message.message_id,
                MAX_DELIVERY_COUNT_EXCEEDED,
                message.delivery_count,
                error,
            )
        elif dead is not None:
            self.log.warning(
                "queue '%s': message %s abandoned (delivery %d of %d), it will be redelivered",
                self.queue,
                message.message_id,
                message.delivery_count,
                self.settings.max_delivery_count,
            )

    async def _settle(self, operation: Callable[..., Any], message: QueueMessage, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(operation, message, **kwargs)
        except LockLostError:
            self.log.warning(
                "queue '%s': message %s lost its lock (the function ran longer than the lock); "
                "it is delivered again",
                self.queue,
                message.message_id,
            )
        except Exception as exc:
            self.log.error("queue '%s': could not settle message %s: %s", self.queue, message.message_id, exc)
        return None

    async def _renew(self, message: QueueMessage) -> None:
        limit = self.settings.max_lock_renewal.total_seconds()
        if limit <= 0:
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        interval = max(self.settings.lock_seconds / 2, 0.05)
        while loop.time() - started + interval <= limit:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(
                    self.store.renew_lock, message, lock_seconds=self.settings.lock_seconds
                )
            except LockLostError:
                return
