"""Module generation status and the run fence (architecture.md §3 "Generation status").

Every transition locks the module row (`SELECT ... FOR UPDATE`), so concurrent deliveries of the same
or different messages for one module serialise on PostgreSQL. Every write names the run it belongs
to; a run that is no longer the module's current run, or has already ended, changes nothing.
All functions are idempotent: an activity may run more than once.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import asyncpg

from clients.http import redact

NOT_STARTED = "not_started"
QUEUED = "queued"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
FAILED = "failed"
ACTIVE = (QUEUED, IN_PROGRESS)

MAX_ERROR_CHARS = 2000


class ModuleNotFound(LookupError):
    def __init__(self, module_id: str) -> None:
        super().__init__(f"module {module_id} does not exist in lessons_module")
        self.module_id = module_id


@dataclass(frozen=True)
class RunKey:
    """What a write needs to pass the run fence: the module and the run (activity inputs carry these)."""

    module_id: str
    run_id: str


@dataclass(frozen=True)
class RunRef:
    """One run as returned by request_generation; any RunRef or RunKey passes to the write functions."""

    module_id: str
    run_id: str
    request_id: str
    instance_id: str

    @property
    def key(self) -> RunKey:
        return RunKey(self.module_id, self.run_id)


AnyRun = RunKey | RunRef


@dataclass(frozen=True)
class RunRecord:
    run: RunRef
    status: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    difficulty: str | None
    learning_style: str | None


class RequestKind(Enum):
    NEW_RUN = "new_run"  # a run was created: start the orchestration
    JOINED = "joined"  # a run is active; this request shares it
    REDELIVERY = "redelivery"  # this request id was seen before: nothing to do


@dataclass(frozen=True)
class RequestOutcome:
    kind: RequestKind
    run: RunRef  # the new run, the run joined, or the run the earlier delivery belonged to
    status: str  # the module's generation_status after the request

    @property
    def new_run(self) -> bool:
        return self.kind is RequestKind.NEW_RUN


class WriteResult(Enum):
    APPLIED = "applied"
    ALREADY_DONE = "already_done"  # the same write happened before (a retried activity)
    FENCED = "fenced"  # the run is not the module's current run, or it has ended otherwise


@dataclass(frozen=True)
class LessonRow:
    lesson_number: int
    title: str
    content: str  # markdown
    source_attribution: list[Any] | dict[str, Any]
    generation_metadata: dict[str, Any]


@dataclass(frozen=True)
class ModuleRecord:
    id: str
    roadmap_id: str | None
    title: str
    description: str
    difficulty: str | None
    generation_status: str
    generation_error: str | None
    generation_started_at: datetime | None
    generation_completed_at: datetime | None
    lesson_count: int
    current_run: RunRecord | None


_RUN_COLUMNS = """r.run_id, r.module_id, r.request_id, r.instance_id, r.status, r.requested_at,
    r.started_at, r.finished_at, r.error, r.difficulty, r.learning_style"""


def _run_record(row: asyncpg.Record) -> RunRecord:
    return RunRecord(
        run=RunRef(
            module_id=str(row["module_id"]),
            run_id=str(row["run_id"]),
            request_id=row["request_id"],
            instance_id=row["instance_id"],
        ),
        status=row["status"],
        requested_at=row["requested_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        difficulty=row["difficulty"],
        learning_style=row["learning_style"],
    )


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ModuleNotFound(str(value)) from None


async def _lock_module(conn: asyncpg.Connection, module_id: str) -> str:
    """Lock the module row for this transaction; returns its generation_status."""
    row = await conn.fetchrow(
        "SELECT generation_status FROM lessons_module WHERE id = $1 FOR UPDATE", _uuid(module_id)
    )
    if row is None:
        raise ModuleNotFound(module_id)
    return row["generation_status"] or NOT_STARTED


async def _current_run(conn: asyncpg.Connection, module_id: str) -> RunRecord | None:
    row = await conn.fetchrow(
        f"""SELECT {_RUN_COLUMNS} FROM lo_current_runs c
            JOIN lo_generation_runs r ON r.run_id = c.run_id WHERE c.module_id = $1""",
        _uuid(module_id),
    )
    return _run_record(row) if row else None


async def get_module(pool: asyncpg.Pool, module_id: str) -> ModuleRecord | None:
    try:
        key = uuid.UUID(str(module_id))
    except ValueError:
        return None
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT m.id, m.roadmap_id::text AS roadmap_id, m.title, m.description, m.difficulty,
                      m.generation_status, m.generation_error, m.generation_started_at,
                      m.generation_completed_at,
                      (SELECT count(*) FROM lessons_lessoncontent l WHERE l.module_id = m.id) AS lessons
               FROM lessons_module m WHERE m.id = $1""",
            key,
        )
        if row is None:
            return None
        current = await _current_run(conn, str(key))
    return ModuleRecord(
        id=str(row["id"]),
        roadmap_id=row["roadmap_id"],
        title=row["title"] or "",
        description=row["description"] or "",
        difficulty=row["difficulty"],
        generation_status=row["generation_status"] or NOT_STARTED,
        generation_error=row["generation_error"],
        generation_started_at=row["generation_started_at"],
        generation_completed_at=row["generation_completed_at"],
        lesson_count=row["lessons"],
        current_run=current,
    )


async def request_generation(
    pool: asyncpg.Pool,
    module_id: str,
    request_id: str,
    *,
    instance_id: str,
    difficulty: str | None = None,
    learning_style: str | None = None,
    stale_after: timedelta | None = None,
) -> RequestOutcome:
    """Apply a generation request to the module's status; race-free under duplicate deliveries.

    `stale_after`: an active run older than this (e.g. the module deadline plus a margin) is taken as
    dead and failed, so a lost orchestration cannot block the module forever. Raises ModuleNotFound.
    """
    if not request_id:
        raise ValueError("request_id must not be empty")
    async with pool.acquire() as conn, conn.transaction():
        status = await _lock_module(conn, module_id)
        known = await conn.fetchrow(
            f"""SELECT {_RUN_COLUMNS} FROM lo_generation_requests q
                JOIN lo_generation_runs r ON r.run_id = q.run_id
                WHERE q.module_id = $1 AND q.request_id = $2""",
            _uuid(module_id),
            request_id,
        )
        if known is not None:
            return RequestOutcome(RequestKind.REDELIVERY, _run_record(known).run, status)

        current = await _current_run(conn, module_id)
        active = current if current is not None and current.status in ACTIVE else None
        if active is not None and stale_after is not None:
            stale = await conn.fetchval(
                "SELECT now() - $1::timestamptz > $2::interval",
                active.started_at or active.requested_at,
                stale_after,
            )
            if stale:
                await _end_run(conn, active.run, FAILED, f"exceeded its deadline ({stale_after})")
                active = None
        if active is not None and status in ACTIVE:
            await conn.execute(
                """INSERT INTO lo_generation_requests (module_id, request_id, run_id, outcome)
                   VALUES ($1, $2, $3, 'joined')""",
                _uuid(module_id),
                request_id,
                uuid.UUID(active.run.run_id),
            )
            return RequestOutcome(RequestKind.JOINED, active.run, status)
        if active is not None:
            # Someone (the web app, an operator) ended the module while its run was active: that run
            # is superseded and fenced off by the new one.
            await _end_run(conn, active.run, FAILED, f"superseded by request {request_id}")

        run = RunRef(
            module_id=str(_uuid(module_id)),
            run_id=str(uuid.uuid4()),
            request_id=request_id,
            instance_id=instance_id,
        )
        await conn.execute(
            """INSERT INTO lo_generation_runs
                   (run_id, module_id, request_id, instance_id, status, difficulty, learning_style)
               VALUES ($1, $2, $3, $4, 'queued', $5, $6)""",
            uuid.UUID(run.run_id),
            _uuid(module_id),
            request_id,
            instance_id,
            difficulty,
            learning_style,
        )
        await conn.execute(
            """INSERT INTO lo_current_runs (module_id, run_id) VALUES ($1, $2)
               ON CONFLICT (module_id) DO UPDATE SET run_id = EXCLUDED.run_id, updated_at = now()""",
            _uuid(module_id),
            uuid.UUID(run.run_id),
        )
        await conn.execute(
            """INSERT INTO lo_generation_requests (module_id, request_id, run_id, outcome)
               VALUES ($1, $2, $3, 'new_run')""",
            _uuid(module_id),
            request_id,
            uuid.UUID(run.run_id),
        )
        await conn.execute(
            """UPDATE lessons_module SET generation_status = 'queued', generation_error = NULL,
                   generation_started_at = NULL, generation_completed_at = NULL
               WHERE id = $1""",
            _uuid(module_id),
        )
        return RequestOutcome(RequestKind.NEW_RUN, run, QUEUED)


async def _fenced_run(conn: asyncpg.Connection, run: AnyRun) -> RunRecord | None:
    """Lock the module and return the run's record if it is still the module's current run."""
    try:
        await _lock_module(conn, run.module_id)
    except ModuleNotFound:
        return None  # the web app deleted the module: nothing left to write to
    current = await _current_run(conn, run.module_id)
    if current is None or current.run.run_id != run.run_id:
        return None
    return current


async def _end_run(conn: asyncpg.Connection, run: AnyRun, status: str, error: str | None) -> None:
    await conn.execute(
        "UPDATE lo_generation_runs SET status = $2, finished_at = now(), error = $3 WHERE run_id = $1",
        uuid.UUID(run.run_id),
        status,
        _trim(error),
    )


def _trim(error: str | None) -> str | None:
    """Errors are shown to users by the web app: no registered secret, bounded length."""
    if error is None:
        return None
    error = redact(error).strip() or "unknown error"
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"


async def mark_in_progress(pool: asyncpg.Pool, run: AnyRun) -> WriteResult:
    """queued → in_progress for the current run."""
    async with pool.acquire() as conn, conn.transaction():
        current = await _fenced_run(conn, run)
        if current is None or current.status not in ACTIVE:
            return WriteResult.FENCED
        if current.status == IN_PROGRESS:
            return WriteResult.ALREADY_DONE
        await conn.execute(
            "UPDATE lo_generation_runs SET status = 'in_progress', started_at = now() WHERE run_id = $1",
            uuid.UUID(run.run_id),
        )
        await conn.execute(
            """UPDATE lessons_module SET generation_status = 'in_progress', generation_error = NULL,
                   generation_started_at = now(), generation_completed_at = NULL
               WHERE id = $1""",
            _uuid(run.module_id),
        )
        return WriteResult.APPLIED


def _check_lessons(lessons: Sequence[LessonRow]) -> None:
    if not lessons:
        raise ValueError("complete_run needs at least one lesson")
    numbers = [lesson.lesson_number for lesson in lessons]
    if len(set(numbers)) != len(numbers) or min(numbers) < 1:
        raise ValueError(f"lesson numbers must be unique and start at 1 or above, got {numbers}")
    for lesson in lessons:
        if not lesson.title.strip() or not lesson.content.strip():
            raise ValueError(f"lesson {lesson.lesson_number} has an empty title or content")


async def complete_run(pool: asyncpg.Pool, run: AnyRun, lessons: Sequence[LessonRow]) -> WriteResult:
    """Write all lessons and `completed` in one transaction, replacing the module's previous lessons.

    Lessons are matched by lesson_number (rows keep their ids, so the web app's references to them
    survive) and numbers beyond the new set are deleted. Running it again changes nothing.
    """
    _check_lessons(lessons)

    async def given(_conn: asyncpg.Connection) -> Sequence[LessonRow]:
        return lessons

    return await complete_run_with(pool, run, given)


async def complete_run_with(
    pool: asyncpg.Pool,
    run: AnyRun,
    load_lessons: Callable[[asyncpg.Connection], Awaitable[Sequence[LessonRow]]],
) -> WriteResult:
    """complete_run with the lessons read inside the same transaction (e.g. from the run's drafts)."""
    async with pool.acquire() as conn, conn.transaction():
        current = await _fenced_run(conn, run)
        if current is None or current.status == FAILED:
            return WriteResult.FENCED
        if current.status == COMPLETED:
            return WriteResult.ALREADY_DONE
        lessons = await load_lessons(conn)
        _check_lessons(lessons)
        await _replace_lessons(conn, run.module_id, lessons)
        await _end_run(conn, run, COMPLETED, None)
        await conn.execute(
            """UPDATE lessons_module SET generation_status = 'completed', generation_error = NULL,
                   generation_started_at = coalesce(generation_started_at, $2),
                   generation_completed_at = now()
               WHERE id = $1""",
            _uuid(run.module_id),
            current.started_at or current.requested_at,
        )
        return WriteResult.APPLIED


async def lock_active_run(conn: asyncpg.Connection, run: AnyRun) -> bool:
    """Inside a transaction: share-lock the run and the module's current-run pointer when `run` is the
    current, active run. Run-scoped data (research items, plan, drafts) is written only then; the share
    lock makes a concurrent new request or run end wait until that write has committed."""
    try:
        module_key, run_key = uuid.UUID(run.module_id), uuid.UUID(run.run_id)
    except ValueError:
        return False
    status = await conn.fetchval(
        """SELECT r.status FROM lo_current_runs c JOIN lo_generation_runs r ON r.run_id = c.run_id
           WHERE c.module_id = $1 AND c.run_id = $2 FOR SHARE""",
        module_key,
        run_key,
    )
    return status in ACTIVE


async def _replace_lessons(conn: asyncpg.Connection, module_id: str, lessons: Sequence[LessonRow]) -> None:
    # Django creates uuid primary keys in Python, so an existing table may have no id default.
    id_column = await conn.fetchrow(
        """SELECT data_type, column_default IS NOT NULL OR is_identity = 'YES' AS has_default
           FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name = 'lessons_lessoncontent'
             AND column_name = 'id'"""
    )
    needs_uuid = id_column is not None and not id_column["has_default"] and id_column["data_type"] == "uuid"
    key = _uuid(module_id)
    for lesson in lessons:
        values = (
            key,
            lesson.lesson_number,
            lesson.title,
            lesson.content,
            lesson.source_attribution,
            lesson.generation_metadata,
        )
        updated = await conn.execute(
            """UPDATE lessons_lessoncontent SET title = $3, content = $4, source_attribution = $5,
                   generation_metadata = $6
               WHERE module_id = $1 AND lesson_number = $2""",
            *values,
        )
        if updated != "UPDATE 0":
            continue
        if needs_uuid:
            await conn.execute(
                """INSERT INTO lessons_lessoncontent (id, module_id, lesson_number, title, content,
                       source_attribution, generation_metadata, created_at)
                   VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, now())""",
                *values,
            )
        else:
            await conn.execute(
                """INSERT INTO lessons_lessoncontent (module_id, lesson_number, title, content,
                       source_attribution, generation_metadata, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6, now())""",
                *values,
            )
    await conn.execute(
        "DELETE FROM lessons_lessoncontent WHERE module_id = $1 AND NOT (lesson_number = ANY($2::int[]))",
        key,
        [lesson.lesson_number for lesson in lessons],
    )


async def fail_run(pool: asyncpg.Pool, run: AnyRun, error: str) -> WriteResult:
    """queued|in_progress → failed with the reason; a completed run is never turned into a failure."""
    async with pool.acquire() as conn, conn.transaction():
        current = await _fenced_run(conn, run)
        if current is None or current.status == COMPLETED:
            return WriteResult.FENCED
        if current.status == FAILED:
            return WriteResult.ALREADY_DONE
        await _end_run(conn, run, FAILED, error)
        await conn.execute(
            """UPDATE lessons_module SET generation_status = 'failed', generation_error = $2,
                   generation_completed_at = now()
               WHERE id = $1""",
            _uuid(run.module_id),
            _trim(error),
        )
        return WriteResult.APPLIED


async def reject_request(pool: asyncpg.Pool, module_id: str, reason: str) -> bool:
    """A message for this module can never succeed: mark the module failed, unless a run is active
    (that run's outcome must not be overwritten by a bad duplicate). Returns whether it was marked."""
    try:
        key = uuid.UUID(str(module_id))
    except ValueError:
        return False
    async with pool.acquire() as conn, conn.transaction():
        try:
            await _lock_module(conn, str(key))
        except ModuleNotFound:
            return False
        current = await _current_run(conn, str(key))
        if current is not None and current.status in ACTIVE:
            return False
        await conn.execute(
            """UPDATE lessons_module SET generation_status = 'failed', generation_error = $2,
                   generation_completed_at = now()
               WHERE id = $1""",
            key,
            _trim(reason),
        )
        return True


async def get_run(pool: asyncpg.Pool, run_id: str) -> RunRecord | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            f"SELECT {_RUN_COLUMNS} FROM lo_generation_runs r WHERE r.run_id = $1", uuid.UUID(run_id)
        )
    return _run_record(row) if row else None
