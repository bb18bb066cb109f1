"""The "Generation status" table of architecture.md §3, row by row, plus the run fence."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import pytest

from clients.db import (
    LessonRow,
    ModuleNotFound,
    RequestKind,
    RunRef,
    WriteResult,
    complete_run,
    fail_run,
    get_module,
    get_run,
    mark_in_progress,
    reject_request,
    request_generation,
)
from clients.db.pool import init_connection
from tests.clients.db.conftest import module_status, new_module


def lessons(count: int, version: str = "v1") -> list[LessonRow]:
    return [
        LessonRow(
            lesson_number=n,
            title=f"Lesson {n} {version}",
            content=f"# Lesson {n}\n\n{version} body",
            source_attribution=[{"source": "github", "url": f"https://github.com/x/{n}"}],
            generation_metadata={"provider": "deepseek", "model": "deepseek-chat", "cache_hit": False},
        )
        for n in range(1, count + 1)
    ]


async def request(pool: asyncpg.Pool, module_id: str, request_id: str | None = None, **kwargs: object):
    return await request_generation(
        pool,
        module_id,
        request_id or f"req-{uuid.uuid4().hex[:8]}",
        instance_id=f"module-{module_id}",
        **kwargs,  # type: ignore[arg-type]
    )


async def lesson_rows(pool: asyncpg.Pool, module_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        """SELECT id, lesson_number, title, generation_metadata FROM lessons_lessoncontent
           WHERE module_id = $1 ORDER BY lesson_number""",
        uuid.UUID(module_id),
    )


async def run_to(pool: asyncpg.Pool, module_id: str, final: str) -> RunRef:
    run = (await request(pool, module_id)).run
    assert await mark_in_progress(pool, run) is WriteResult.APPLIED
    if final == "completed":
        assert await complete_run(pool, run, lessons(3)) is WriteResult.APPLIED
    elif final == "failed":
        assert await fail_run(pool, run, "boom") is WriteResult.APPLIED
    return run


# --- row 1: not_started, completed, failed + new request_id → queued -----------------------------


@pytest.mark.parametrize("start", ["not_started", "completed", "failed"])
async def test_new_request_on_idle_module_queues_a_new_run(pool: asyncpg.Pool, start: str) -> None:
    module_id = await new_module(pool)
    previous = await run_to(pool, module_id, start) if start != "not_started" else None

    outcome = await request(pool, module_id, "fresh", difficulty="beginner", learning_style="visual")

    assert outcome.kind is RequestKind.NEW_RUN and outcome.new_run
    assert outcome.status == "queued"
    assert outcome.run.request_id == "fresh" and outcome.run.instance_id == f"module-{module_id}"
    assert previous is None or outcome.run.run_id != previous.run_id
    row = await module_status(pool, module_id)
    assert row["generation_status"] == "queued"
    assert row["generation_error"] is None and row["generation_completed_at"] is None
    record = await get_run(pool, outcome.run.run_id)
    assert record is not None and record.status == "queued"
    assert (record.difficulty, record.learning_style) == ("beginner", "visual")


async def test_module_queued_by_the_web_app_without_a_run_gets_one(pool: asyncpg.Pool) -> None:
    # The web app sets `queued` itself before sending the message (seed guide).
    module_id = await new_module(pool, status="queued")
    outcome = await request(pool, module_id)
    assert outcome.kind is RequestKind.NEW_RUN


# --- row 2: queued → in_progress when the run starts ---------------------------------------------


async def test_run_start_moves_queued_to_in_progress_once(pool: asyncpg.Pool) -> None:
    module_id = await new_module(pool)
    run = (await request(pool, module_id)).run
    assert await mark_in_progress(pool, run) is WriteResult.APPLIED
    row = await module_status(pool, module_id)
    assert row["generation_status"] == "in_progress" and row["generation_started_at"] is not None
    assert await mark_in_progress(pool, run) is WriteResult.ALREADY_DONE
    assert (await get_run(pool, run.run_id)).status == "in_progress"  # type: ignore[union-attr]


# --- row 3: in_progress → completed when all lessons are written ---------------------------------


async def test_completion_writes_lessons_and_status_together(pool: asyncpg.Pool) -> None:
    module_id = await new_module(pool)
    run = await run_to(pool, module_id, "in_progress")
    assert await complete_run(pool, run, lessons(4)) is WriteResult.APPLIED
    row = await module_status(pool, module_id)
    assert row["generation_status"] == "completed" and row["generation_completed_at"] is not None
    stored = await lesson_rows(pool, module_id)
    assert [r["lesson_number"] for r in stored] == [1, 2, 3, 4]
    assert stored[0]["generation_metadata"]["provider"] == "deepseek"
    module = await get_module(pool, module_id)
    assert module is not None and module.lesson_count == 4
    assert module.current_run is not None and module.current_run.status == "completed"


# --- row 4: queued, in_progress → failed ---------------------------------------------------------


@pytest.mark.parametrize("start", ["queued", "in_progress"])
async def test_failure_marks_module_failed_with_the_reason(pool: asyncpg.Pool, start: str) -> None:
    module_id = await new_module(pool)
    run = (await request(pool, module_id)).run
    if start == "in_progress":
        await mark_in_progress(pool, run)
    assert await fail_run(pool, run, "no AI provider could generate lesson 2") is WriteResult.APPLIED
    row = await module_status(pool, module_id)
    assert row["generation_status"] == "failed"
    assert row["generation_error"] == "no AI provider could generate lesson 2"
    assert await fail_run(pool, run, "again") is WriteResult.ALREADY_DONE
    assert (await module_status(pool, module_id))[
        "generation_error"
    ] == "no AI provider could generate lesson 2"


async def test_stale_active_run_is_failed_for_exceeding_its_deadline(pool: asyncpg.Pool) -> None:
    module_id = await new_module(pool)
    old = (await request(pool, module_id)).run
    await mark_in_progress(pool, old)
    fresh = await request(pool, module_id, stale_after=timedelta(microseconds=1))
    assert fresh.kind is RequestKind.NEW_RUN
    old_record = await get_run(pool, old.run_id)
    assert old_record is not None and old_record.status == "failed"
    assert "deadline" in (old_record.error or "")


# --- row 5: any + request_id of the current or last run → unchanged, no new run ------------------


@pytest.mark.parametrize("start", ["queued", "in_progress", "completed", "failed"])
async def test_redelivery_changes_nothing(pool: asyncpg.Pool, start: str) -> None:
    module_id = await new_module(pool)
    run = (await request(pool, module_id, "r1")).run
    if start != "queued":
        await mark_in_progress(pool, run)
    if start == "completed":
        await complete_run(pool, run, lessons(3))
    if start == "failed":
        await fail_run(pool, run, "boom")
    before = await module_status(pool, module_id)

    outcome = await request(pool, module_id, "r1")

    assert outcome.kind is RequestKind.REDELIVERY and not outcome.new_run
    assert outcome.run == run and outcome.status == start
    assert await module_status(pool, module_id) == before
    count = await pool.fetchval(
        "SELECT count(*) FROM lo_generation_runs WHERE module_id = $1", uuid.UUID(module_id)
    )
    assert count == 1


# --- row 6: queued, in_progress + new request_id → unchanged, joins the running run ---------------


@pytest.mark.parametrize("start", ["queued", "in_progress"])
async def test_new_request_joins_the_active_run(pool: asyncpg.Pool, start: str) -> None:
    module_id = await new_module(pool)
    run = (await request(pool, module_id, "first")).run
    if start == "in_progress":
        await mark_in_progress(pool, run)
    joined = await request(pool, module_id, "second")
    assert joined.kind is RequestKind.JOINED and joined.run == run and joined.status == start
    assert (await module_status(pool, module_id))["generation_status"] == start
    # After the run ends, a redelivery of the joined request is still recognised.
    if start == "queued":
        await mark_in_progress(pool, run)
    await complete_run(pool, run, lessons(3))
    again = await request(pool, module_id, "second")
    assert again.kind is RequestKind.REDELIVERY and again.run == run


# --- run fence ------------------------------------------------------------------------------------


async def test_writes_from_a_superseded_run_are_ignored(pool: asyncpg.Pool) -> None:
    module_id = await new_module(pool)
    old = (await request(pool, module_id)).run
    await mark_in_progress(pool, old)
    # An operator (or the web app) marks the module failed while the old orchestration still runs;
    # a new request then starts a new run.
    await pool.execute(
        "UPDATE lessons_module SET generation_status = 'failed' WHERE id = $1", uuid.UUID(module_id)
    )
    new = (await request(pool, module_id)).run
    assert new.run_id != old.run_id

    assert await mark_in_progress(pool, old) is WriteResult.FENCED
    assert await complete_run(pool, old, lessons(5, "stale")) is WriteResult.FENCED
    assert await fail_run(pool, old, "late failure") is WriteResult.FENCED
    row = await module_status(pool, module_id)
    assert row["generation_status"] == "queued" and row["generation_error"] is None
    assert await lesson_rows(pool, module_id) == []
    superseded = await get_run(pool, old.run_id)
    assert (
        superseded is not None and superseded.status == "failed" and "superseded" in (superseded.error or "")
    )

    await mark_in_progress(pool, new)
    assert await complete_run(pool, new, lessons(3, "new")) is WriteResult.APPLIED
    assert [r["title"] for r in await lesson_rows(pool, module_id)] == [f"Lesson {n} new" for n in (1, 2, 3)]


async def test_completed_run_is_never_turned_into_a_failure_and_failed_never_completes(
    pool: asyncpg.Pool,
) -> None:
    module_id = await new_module(pool)
    done = await run_to(pool, module_id, "completed")
    assert await fail_run(pool, done, "late deadline") is WriteResult.FENCED
    assert (await module_status(pool, module_id))["generation_status"] == "completed"

    other = await new_module(pool)
    failed = await run_to(pool, other, "failed")
    assert await complete_run(pool, failed, lessons(3)) is WriteResult.FENCED
    assert (await module_status(pool, other))["generation_status"] == "failed"
    assert await lesson_rows(pool, other) == []


async def test_forged_run_id_is_fenced(pool: asyncpg.Pool) -> None:
    module_id = await new_module(pool)
    run = (await request(pool, module_id)).run
    forged = RunRef(module_id, str(uuid.uuid4()), run.request_id, run.instance_id)
    assert await mark_in_progress(pool, forged) is WriteResult.FENCED
    assert (await module_status(pool, module_id))["generation_status"] == "queued"


# --- complete_run: idempotent, atomic replacement --------------------------------------------------


async def test_complete_run_twice_never_duplicates(pool: asyncpg.Pool) -> None:
    module_id = await new_module(pool)
    run = await run_to(pool, module_id, "in_progress")
    results = await asyncio.gather(*(complete_run(pool, run, lessons(3)) for _ in range(3)))
    assert sorted(r.value for r in results) == ["already_done", "already_done", "applied"]
    assert len(await lesson_rows(pool, module_id)) == 3


async def test_new_run_replaces_previous_lessons_keeping_ids_by_number(pool: asyncpg.Pool) -> None:
    module_id = await new_module(pool)
    first = await run_to(pool, module_id, "in_progress")
    await complete_run(pool, first, lessons(5, "v1"))
    ids_before = {r["lesson_number"]: r["id"] for r in await lesson_rows(pool, module_id)}

    second = await run_to(pool, module_id, "in_progress")
    assert await complete_run(pool, second, lessons(3, "v2")) is WriteResult.APPLIED

    rows = await lesson_rows(pool, module_id)
    assert [r["title"] for r in rows] == ["Lesson 1 v2", "Lesson 2 v2", "Lesson 3 v2"]
    assert {r["lesson_number"]: r["id"] for r in rows} == {n: ids_before[n] for n in (1, 2, 3)}


async def test_a_failing_lesson_write_leaves_old_lessons_and_status_untouched(pool: asyncpg.Pool) -> None:
    module_id = await new_module(pool)
    first = await run_to(pool, module_id, "in_progress")
    await complete_run(pool, first, lessons(3, "v1"))
    second = await run_to(pool, module_id, "in_progress")
    # A real database error half-way through the write: a trigger rejects lesson 4.
    await pool.execute(
        """CREATE FUNCTION reject_lesson_4() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN IF NEW.lesson_number = 4 THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$;
           CREATE TRIGGER reject_lesson_4 BEFORE INSERT ON lessons_lessoncontent
           FOR EACH ROW EXECUTE FUNCTION reject_lesson_4();"""
    )
    try:
        with pytest.raises(asyncpg.RaiseError, match="disk full"):
            await complete_run(pool, second, lessons(4, "v2"))
    finally:
        await pool.execute(
            "DROP TRIGGER reject_lesson_4 ON lessons_lessoncontent; DROP FUNCTION reject_lesson_4()"
        )
    assert [r["title"] for r in await lesson_rows(pool, module_id)] == [f"Lesson {n} v1" for n in (1, 2, 3)]
    assert (await module_status(pool, module_id))["generation_status"] == "in_progress"
    assert await complete_run(pool, second, lessons(4, "v2")) is WriteResult.APPLIED
    assert len(await lesson_rows(pool, module_id)) == 4


@pytest.mark.parametrize(
    "bad",
    [[], lessons(2) + lessons(1), [LessonRow(0, "t", "c", [], {})], [LessonRow(1, " ", "c", [], {})]],
)
async def test_invalid_lessons_are_rejected_before_any_write(
    pool: asyncpg.Pool, bad: list[LessonRow]
) -> None:
    module_id = await new_module(pool)
    run = await run_to(pool, module_id, "in_progress")
    with pytest.raises(ValueError):
        await complete_run(pool, run, bad)
    assert (await module_status(pool, module_id))["generation_status"] == "in_progress"


async def test_lessons_into_a_django_table_with_uuid_ids_and_no_defaults(migrated_url: str) -> None:
    # Django creates uuid ids and created_at in Python: the table has no defaults for them.
    conn = await asyncpg.connect(migrated_url)
    await init_connection(conn)
    try:
        await conn.execute("CREATE SCHEMA django; SET search_path TO django")
        await conn.execute(
            """CREATE TABLE lessons_module (id uuid PRIMARY KEY, roadmap_id bigint,
                   title varchar(200) NOT NULL, description text NOT NULL, difficulty varchar(20) NOT NULL,
                   generation_status varchar(20) NOT NULL, generation_error text,
                   generation_started_at timestamptz, generation_completed_at timestamptz);
               CREATE TABLE lessons_lessoncontent (id uuid PRIMARY KEY, module_id uuid NOT NULL
                   REFERENCES lessons_module (id), lesson_number int NOT NULL, title varchar(200) NOT NULL,
                   content text NOT NULL, source_attribution jsonb NOT NULL,
                   generation_metadata jsonb NOT NULL, created_at timestamptz NOT NULL,
                   UNIQUE (module_id, lesson_number));"""
        )
        from clients.db.migrations import migrate_connection

        report = await migrate_connection(conn)
        assert report.existing_tables == ("lessons_module", "lessons_lessoncontent")
        assert report.web_tables_usable
        module_id = uuid.uuid4()
        await conn.execute(
            """INSERT INTO lessons_module (id, roadmap_id, title, description, difficulty, generation_status)
               VALUES ($1, 7, 'Django', '', 'beginner', 'not_started')""",
            module_id,
        )
    finally:
        await conn.close()
    django_pool = await asyncpg.create_pool(
        migrated_url, min_size=1, max_size=2, init=init_connection, server_settings={"search_path": "django"}
    )
    try:
        run = (await request(django_pool, str(module_id))).run
        await mark_in_progress(django_pool, run)
        assert await complete_run(django_pool, run, lessons(3)) is WriteResult.APPLIED
        ids = await django_pool.fetch("SELECT id FROM lessons_lessoncontent WHERE module_id = $1", module_id)
        assert len({row["id"] for row in ids}) == 3
        module = await get_module(django_pool, str(module_id))
        assert module is not None and module.roadmap_id == "7" and module.lesson_count == 3
    finally:
        await django_pool.close()


# --- unknown modules and poison messages -----------------------------------------------------------


async def test_unknown_module_raises_and_writes_nothing(pool: asyncpg.Pool) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(ModuleNotFound, match=missing):
        await request(pool, missing)
    with pytest.raises(ModuleNotFound):
        await request(pool, "not-a-uuid")
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM lo_generation_runs WHERE module_id = $1", uuid.UUID(missing)
        )
        == 0
    )
    assert await get_module(pool, missing) is None


async def test_reject_request_marks_failed_only_without_an_active_run(pool: asyncpg.Pool) -> None:
    idle = await new_module(pool)
    assert await reject_request(pool, idle, "difficulty: Input should be 'beginner'") is True
    row = await module_status(pool, idle)
    assert row["generation_status"] == "failed" and "difficulty" in row["generation_error"]

    busy = await new_module(pool)
    await request(pool, busy)
    assert await reject_request(pool, busy, "bad duplicate") is False
    assert (await module_status(pool, busy))["generation_status"] == "queued"
    assert await reject_request(pool, str(uuid.uuid4()), "unknown") is False


# --- concurrency -------------------------------------------------------------------------------------


@pytest.fixture
async def wide_pool(migrated_url: str):
    pool = await asyncpg.create_pool(migrated_url, min_size=10, max_size=10, init=init_connection)
    try:
        yield pool
    finally:
        await pool.close()


async def test_ten_concurrent_duplicate_deliveries_make_exactly_one_run(
    pool: asyncpg.Pool, wide_pool: asyncpg.Pool
) -> None:
    module_id = await new_module(pool)
    outcomes = await asyncio.gather(*(request(wide_pool, module_id, "dup") for _ in range(10)))
    kinds = [o.kind for o in outcomes]
    assert kinds.count(RequestKind.NEW_RUN) == 1
    assert kinds.count(RequestKind.REDELIVERY) == 9
    assert len({o.run for o in outcomes}) == 1
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM lo_generation_runs WHERE module_id = $1", uuid.UUID(module_id)
        )
        == 1
    )


async def test_ten_concurrent_different_requests_make_one_run_the_rest_join(
    pool: asyncpg.Pool, wide_pool: asyncpg.Pool
) -> None:
    module_id = await new_module(pool, status="completed")
    outcomes = await asyncio.gather(*(request(wide_pool, module_id, f"r{i}") for i in range(10)))
    kinds = [o.kind for o in outcomes]
    assert kinds.count(RequestKind.NEW_RUN) == 1 and kinds.count(RequestKind.JOINED) == 9
    assert len({o.run.run_id for o in outcomes}) == 1


async def test_stored_errors_are_redacted_and_bounded(pool: asyncpg.Pool) -> None:
    from clients.http import register_secret

    register_secret("gsk_runs_test_secret_value")
    module_id = await new_module(pool)
    run = (await request(pool, module_id)).run
    await fail_run(pool, run, "groq said 401 for key gsk_runs_test_secret_value " + "x" * 5000)
    error = (await module_status(pool, module_id))["generation_error"]
    assert "gsk_runs_test_secret_value" not in error and "***" in error
    assert len(error) == 2000
