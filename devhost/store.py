"""SQLite persistence of the engine: instances, histories, pending messages, activity work items.

One write transaction per episode (history append + status + new work + consumed messages), so a
killed host resumes from a consistent state. Other components add their own tables and record their
schema in ``schema_version`` under their own component name.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devhost.status import TERMINAL_STATUSES, InstanceStatus, RuntimeStatus

# SQLite builds before 3.32 allow at most 999 bound parameters per statement.
_SQL_PARAMETER_CHUNK = 900

DB_FILE_NAME = "devhost.sqlite3"
COMPONENT = "engine"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    runtime_status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    created_time TEXT NOT NULL,
    last_updated_time TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    parent_instance_id TEXT,
    parent_execution_id TEXT,
    parent_name TEXT,
    parent_task_id INTEGER,
    failure_details TEXT
);
CREATE INDEX IF NOT EXISTS instances_by_created ON instances (created_time, instance_id);
CREATE TABLE IF NOT EXISTS history (
    instance_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    execution_id TEXT NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (instance_id, sequence)
) WITHOUT ROWID;
-- Incoming events per instance. execution_id NULL = for whichever execution is current (raised
-- events, control messages); deliver_at (epoch microseconds) > now = a durable timer not yet due.
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT,
    deliver_at INTEGER NOT NULL DEFAULT 0,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_instance ON messages (instance_id, id);
CREATE INDEX IF NOT EXISTS messages_by_due ON messages (deliver_at);
-- Activities dispatched but whose result is not committed yet: re-run after a crash.
CREATE TABLE IF NOT EXISTS activity_work (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    input TEXT
);
"""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Exact epoch microseconds (float timestamps could be off by one and make a timer spin)."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass
class InstanceRecord:
    instance_id: str
    name: str
    execution_id: str
    runtime_status: RuntimeStatus
    input_text: str | None
    output_text: str | None
    custom_status_text: str | None
    created_time: datetime
    last_updated_time: datetime
    generation: int = 0
    parent_instance_id: str | None = None
    parent_execution_id: str | None = None
    parent_name: str | None = None
    parent_task_id: int | None = None
    failure_details: str | None = None

    def to_status(self) -> InstanceStatus:
        return InstanceStatus(
            self.instance_id,
            self.name,
            self.runtime_status,
            self.input_text,
            self.output_text,
            self.custom_status_text,
            self.created_time,
            self.last_updated_time,
            self.execution_id,
            self.parent_instance_id,
        )


_INSTANCE_COLUMNS = (
    "instance_id, name, execution_id, runtime_status, input, output, custom_status, "
    "created_time, last_updated_time, generation, parent_instance_id, parent_execution_id, "
    "parent_name, parent_task_id, failure_details"
)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _record(row: Sequence[object]) -> InstanceRecord:
    parent_task = row[13]
    return InstanceRecord(
        instance_id=str(row[0]),
        name=str(row[1]),
        execution_id=str(row[2]),
        runtime_status=RuntimeStatus(str(row[3])),
        input_text=_opt_str(row[4]),
        output_text=_opt_str(row[5]),
        custom_status_text=_opt_str(row[6]),
        created_time=_from_iso(str(row[7])),
        last_updated_time=_from_iso(str(row[8])),
        generation=int(str(row[9])),
        parent_instance_id=_opt_str(row[10]),
        parent_execution_id=_opt_str(row[11]),
        parent_name=_opt_str(row[12]),
        parent_task_id=None if parent_task is None else int(str(parent_task)),
        failure_details=_opt_str(row[14]),
    )


def _instance_values(record: InstanceRecord) -> tuple[object, ...]:
    return (
        record.instance_id,
        record.name,
        record.execution_id,
        str(record.runtime_status),
        record.input_text,
        record.output_text,
        record.custom_status_text,
        _iso(record.created_time),
        _iso(record.last_updated_time),
        record.generation,
        record.parent_instance_id,
        record.parent_execution_id,
        record.parent_name,
        record.parent_task_id,
        record.failure_details,
    )


@dataclass(frozen=True)
class Message:
    id: int
    instance_id: str
    execution_id: str | None
    deliver_at: int
    event_text: str


@dataclass(frozen=True)
class NewMessage:
    instance_id: str
    execution_id: str | None
    event_text: str
    deliver_at: int = 0


@dataclass(frozen=True)
class WorkItem:
    id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input_text: str | None


@dataclass(frozen=True)
class NewWorkItem:
    task_id: int
    name: str
    input_text: str | None


@dataclass
class EpisodeWrite:
    """Everything one episode changes, committed together."""

    instance: InstanceRecord
    expected_execution_id: str
    history_start: int
    history_texts: list[str]
    consumed_message_ids: list[int] = field(default_factory=list)
    new_messages: list[NewMessage] = field(default_factory=list)
    new_work: list[NewWorkItem] = field(default_factory=list)
    new_instances: list[InstanceRecord] = field(default_factory=list)
    # Replaced child instances (terminal ones restarted as sub-orchestrations) lose their old data.
    replaced_instance_ids: list[str] = field(default_factory=list)
    # continue_as_new: the finished execution's history is dropped (DTFx truncates eternal histories).
    drop_history: bool = False
    # The execution ended: its timers can never matter again, so they are not kept until they are due.
    drop_timers: bool = False


class Store:
    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / DB_FILE_NAME
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives a killed process (not a power cut), which is the crash we emulate.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)  # idempotent: every statement is CREATE ... IF NOT EXISTS
        with self._transaction():
            row = self._db.execute(
                "SELECT version FROM schema_version WHERE component = ?", (COMPONENT,)
            ).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO schema_version (component, version) VALUES (?, ?)",
                    (COMPONENT, SCHEMA_VERSION),
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} was written by a newer devhost (engine schema {row[0]}).")

    def close(self) -> None:
        self._db.close()

    # -- transactions -------------------------------------------------------------------------------
    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            self.db.execute("ROLLBACK" if exc_type is not None else "COMMIT")

    def _transaction(self) -> Store._Tx:
        return Store._Tx(self._db)

    # -- instances ----------------------------------------------------------------------------------
    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        row = self._db.execute(
            f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?", (instance_id,)
        ).fetchone()
        return _record(row) if row else None

    def list_instances(
        self,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        statuses: Iterable[str] | None = None,
        prefix: str | None = None,
        top: int | None = None,
        continuation: str | None = None,
    ) -> tuple[list[InstanceRecord], str | None]:
        where, args = self._filters(created_from, created_to, statuses, prefix)
        if continuation:
            try:
                after_created, after_id = json.loads(base64.urlsafe_b64decode(continuation.encode()))
            except (ValueError, TypeError) as error:
                raise ValueError(f"Invalid continuation token: {continuation!r}") from error
            where.append("(created_time > ? OR (created_time = ? AND instance_id > ?))")
            args += [after_created, after_created, after_id]
        sql = f"SELECT {_INSTANCE_COLUMNS} FROM instances"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_time, instance_id"
        if top is not None:
            sql += " LIMIT ?"
            args.append(top + 1)
        rows = [_record(r) for r in self._db.execute(sql, args).fetchall()]
        token = None
        if top is not None and len(rows) > top:
            rows = rows[:top]
            last = rows[-1]
            key = json.dumps([_iso(last.created_time), last.instance_id])
            token = base64.urlsafe_b64encode(key.encode()).decode()
        return rows, token

    @staticmethod
    def _filters(
        created_from: datetime | None,
        created_to: datetime | None,
        statuses: Iterable[str] | None,
        prefix: str | None,
    ) -> tuple[list[str], list[object]]:
        where: list[str] = []
        args: list[object] = []
        if created_from is not None:
            where.append("created_time >= ?")
            args.append(_iso(created_from))
        if created_to is not None:
            where.append("created_time <= ?")
            args.append(_iso(created_to))
        if statuses is not None:
            names = [str(RuntimeStatus(s)) for s in statuses]
            where.append(f"runtime_status IN ({','.join('?' * len(names))})" if names else "0")
            args += names
        if prefix:
            where.append("substr(instance_id, 1, ?) = ?")
            args += [len(prefix), prefix]
        return where, args

    def create_instance(self, record: InstanceRecord, start: NewMessage) -> None:
        """Create or replace an instance: fresh history, its ExecutionStarted message queued."""
        with self._transaction() as db:
            self._delete_instance_data(db, record.instance_id)
            db.execute(
                f"INSERT OR REPLACE INTO instances ({_INSTANCE_COLUMNS}) VALUES ({','.join('?' * 15)})",
                _instance_values(record),
            )
            self._insert_messages(db, [start])

    @staticmethod
    def _delete_instance_data(db: sqlite3.Connection, instance_id: str) -> None:
        db.execute("DELETE FROM history WHERE instance_id = ?", (instance_id,))
        db.execute("DELETE FROM messages WHERE instance_id = ?", (instance_id,))
        db.execute("DELETE FROM activity_work WHERE instance_id = ?", (instance_id,))

    def purge(self, instance_id: str) -> int:
        with self._transaction() as db:
            self._delete_instance_data(db, instance_id)
            return db.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,)).rowcount

    def purge_by(
        self, *, created_from: datetime, created_to: datetime | None, statuses: Iterable[str]
    ) -> list[str]:
        where, args = self._filters(created_from, created_to, statuses, None)
        with self._transaction() as db:
            ids = [
                str(r[0])
                for r in db.execute(
                    "SELECT instance_id FROM instances WHERE " + " AND ".join(where), args
                ).fetchall()
            ]
            for instance_id in ids:
                self._delete_instance_data(db, instance_id)
                db.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,))
        return ids

    # -- history ------------------------------------------------------------------------------------
    def load_history(self, instance_id: str) -> list[str]:
        return [
            str(r[0])
            for r in self._db.execute(
                "SELECT event FROM history WHERE instance_id = ? ORDER BY sequence", (instance_id,)
            ).fetchall()
        ]

    # -- messages -----------------------------------------------------------------------------------
    def add_message(self, message: NewMessage) -> None:
        with self._transaction() as db:
            self._insert_messages(db, [message])

    @staticmethod
    def _insert_messages(db: sqlite3.Connection, messages: Iterable[NewMessage]) -> None:
        db.executemany(
            "INSERT INTO messages (instance_id, execution_id, deliver_at, event) VALUES (?, ?, ?, ?)",
            [(m.instance_id, m.execution_id, m.deliver_at, m.event_text) for m in messages],
        )

    def pending_messages(self, instance_id: str, now_us: int) -> list[Message]:
        rows = self._db.execute(
            "SELECT id, instance_id, execution_id, deliver_at, event FROM messages "
            "WHERE instance_id = ? AND deliver_at <= ? ORDER BY id",
            (instance_id, now_us),
        ).fetchall()
        return [Message(int(r[0]), str(r[1]), r[2], int(r[3]), str(r[4])) for r in rows]

    def delete_messages(self, ids: Sequence[int]) -> None:
        if ids:
            with self._transaction() as db:
                db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])

    def instances_with_due_messages(self, now_us: int) -> list[str]:
        return [
            str(r[0])
            for r in self._db.execute(
                "SELECT DISTINCT instance_id FROM messages WHERE deliver_at <= ?", (now_us,)
            ).fetchall()
        ]

    def next_due_after(self, now_us: int) -> int | None:
        row = self._db.execute(
            "SELECT MIN(deliver_at) FROM messages WHERE deliver_at > ?", (now_us,)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    # -- activity work ------------------------------------------------------------------------------
    def work_items(self) -> list[WorkItem]:
        rows = self._db.execute(
            "SELECT id, instance_id, execution_id, task_id, name, input FROM activity_work ORDER BY id"
        ).fetchall()
        return [WorkItem(int(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4]), r[5]) for r in rows]

    def delete_work(self, ids: Sequence[int]) -> None:
        if ids:
            with self._transaction() as db:
                db.executemany("DELETE FROM activity_work WHERE id = ?", [(i,) for i in ids])

    def complete_work(self, results: Sequence[tuple[int, NewMessage]]) -> list[str]:
        """Commit activity results: each deletes its work item and queues its completion message.

        A result whose work item is gone (instance purged or replaced) is discarded.
        Returns the instance ids that received a message.
        """
        with self._transaction() as db:
            # One statement per kind for the whole batch: a fan-in of thousands is one transaction.
            live: set[int] = set()
            ids = [work_id for work_id, _ in results]
            for start in range(0, len(ids), _SQL_PARAMETER_CHUNK):
                chunk = ids[start : start + _SQL_PARAMETER_CHUNK]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT id FROM activity_work WHERE id IN ({marks})"
                live.update(row[0] for row in db.execute(query, chunk))
            kept = [(work_id, message) for work_id, message in results if work_id in live]
            db.executemany("DELETE FROM activity_work WHERE id = ?", [(work_id,) for work_id, _ in kept])
            self._insert_messages(db, [message for _, message in kept])
        return [message.instance_id for _, message in kept]

    # -- episodes -----------------------------------------------------------------------------------
    def commit_episode(self, write: EpisodeWrite) -> list[WorkItem] | None:
        """Apply one episode atomically; None if the instance changed meanwhile (purged/replaced)."""
        record = write.instance
        with self._transaction() as db:
            row = db.execute(
                "SELECT execution_id FROM instances WHERE instance_id = ?", (record.instance_id,)
            ).fetchone()
            if row is None or row[0] != write.expected_execution_id:
                return None
            if write.drop_history:
                db.execute("DELETE FROM history WHERE instance_id = ?", (record.instance_id,))
            if write.drop_timers:
                db.execute(
                    "DELETE FROM messages WHERE instance_id = ? AND execution_id = ? AND deliver_at > 0",
                    (record.instance_id, write.expected_execution_id),
                )
            db.executemany(
                "INSERT INTO history (instance_id, sequence, execution_id, event) VALUES (?, ?, ?, ?)",
                [
                    (record.instance_id, write.history_start + i, write.expected_execution_id, text)
                    for i, text in enumerate(write.history_texts)
                ],
            )
            db.execute(
                f"INSERT OR REPLACE INTO instances ({_INSTANCE_COLUMNS}) VALUES ({','.join('?' * 15)})",
                _instance_values(record),
            )
            db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in write.consumed_message_ids])
            for replaced in write.replaced_instance_ids:
                self._delete_instance_data(db, replaced)
            for child in write.new_instances:
                db.execute(
                    f"INSERT OR REPLACE INTO instances ({_INSTANCE_COLUMNS}) VALUES ({','.join('?' * 15)})",
                    _instance_values(child),
                )
            self._insert_messages(db, write.new_messages)
            work: list[WorkItem] = []
            for item in write.new_work:
                cursor = db.execute(
                    "INSERT INTO activity_work (instance_id, execution_id, task_id, name, input) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (record.instance_id, record.execution_id, item.task_id, item.name, item.input_text),
                )
                work.append(
                    WorkItem(
                        int(cursor.lastrowid or 0),
                        record.instance_id,
                        record.execution_id,
                        item.task_id,
                        item.name,
                        item.input_text,
                    )
                )
        return work

    def is_terminal(self, instance_id: str) -> bool:
        record = self.get_instance(instance_id)
        return record is not None and record.runtime_status in TERMINAL_STATUSES
