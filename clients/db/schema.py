"""The SQL of every table: the project's own (versioned, `lo_` prefix) and the web app's two tables.

Own tables change only by appending a Migration; a released migration is never edited. The web app's
tables belong to Django: they are created only when absent (standalone use) and never altered.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS_TABLE = "lo_schema_migrations"

CREATE_MIGRATIONS_TABLE = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""

_V1 = """
-- One row per generation run: the run fence. module_id is not a foreign key because lessons_module
-- belongs to the web app (its key type and lifecycle are Django's).
CREATE TABLE lo_generation_runs (
    run_id          uuid PRIMARY KEY,
    module_id       uuid NOT NULL,
    request_id      text NOT NULL,
    instance_id     text NOT NULL,
    status          text NOT NULL CHECK (status IN ('queued', 'in_progress', 'completed', 'failed')),
    difficulty      text,
    learning_style  text,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    error           text,
    UNIQUE (module_id, request_id)
);
CREATE INDEX lo_generation_runs_module_idx ON lo_generation_runs (module_id, requested_at DESC);
CREATE INDEX lo_generation_runs_status_idx ON lo_generation_runs (status, finished_at DESC);

-- The module's current run: only this run's writes are accepted.
CREATE TABLE lo_current_runs (
    module_id   uuid PRIMARY KEY,
    run_id      uuid NOT NULL REFERENCES lo_generation_runs (run_id),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every request id ever received, including those that joined a running run, so a redelivery of any
-- of them is recognised after the run has ended.
CREATE TABLE lo_generation_requests (
    module_id    uuid NOT NULL,
    request_id   text NOT NULL,
    run_id       uuid NOT NULL REFERENCES lo_generation_runs (run_id),
    outcome      text NOT NULL CHECK (outcome IN ('new_run', 'joined')),
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (module_id, request_id)
);

CREATE TABLE lo_research_items (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        uuid NOT NULL REFERENCES lo_generation_runs (run_id) ON DELETE CASCADE,
    module_id     uuid NOT NULL,
    source        text NOT NULL,
    position      integer NOT NULL,
    title         text NOT NULL,
    url           text NOT NULL,
    summary       text NOT NULL DEFAULT '',
    score         double precision NOT NULL DEFAULT 0,
    published_at  timestamptz,
    tags          text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, source, position)
);
CREATE INDEX lo_research_items_module_idx ON lo_research_items (module_id);

CREATE TABLE lo_research_cache (
    source      text NOT NULL,
    query_key   text NOT NULL,
    items       jsonb NOT NULL,
    fetched_at  timestamptz NOT NULL,
    PRIMARY KEY (source, query_key)
);
CREATE INDEX lo_research_cache_fetched_idx ON lo_research_cache (fetched_at);

CREATE TABLE lo_lesson_cache (
    key          text PRIMARY KEY,
    lesson       jsonb NOT NULL,
    meta         jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    hits         bigint NOT NULL DEFAULT 0,
    last_hit_at  timestamptz
);

CREATE TABLE lo_ai_usage (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      uuid,
    module_id   uuid,
    provider    text NOT NULL,
    model       text NOT NULL,
    tokens_in   integer NOT NULL DEFAULT 0 CHECK (tokens_in >= 0),
    tokens_out  integer NOT NULL DEFAULT 0 CHECK (tokens_out >= 0),
    latency_ms  integer,
    cache_hit   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lo_ai_usage_created_idx ON lo_ai_usage (created_at);
"""

_V2 = """
-- What a run produced between activities (activity inputs and outputs stay small: ids only).
CREATE TABLE lo_run_plans (
    run_id      uuid PRIMARY KEY REFERENCES lo_generation_runs (run_id) ON DELETE CASCADE,
    plan        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lo_lesson_drafts (
    run_id               uuid NOT NULL REFERENCES lo_generation_runs (run_id) ON DELETE CASCADE,
    lesson_number        integer NOT NULL CHECK (lesson_number >= 1),
    title                text NOT NULL,
    content              text NOT NULL,
    source_attribution   jsonb NOT NULL,
    generation_metadata  jsonb NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, lesson_number)
);
"""

_V3 = """
-- Plans by module topic (title, description, difficulty, learning style, prompt version): lesson cache
-- keys include the plan's wording, so only a reused plan lets a repeated topic reuse its lessons.
CREATE TABLE lo_plan_cache (
    key          text PRIMARY KEY,
    plan         jsonb NOT NULL,
    meta         jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    hits         bigint NOT NULL DEFAULT 0,
    last_hit_at  timestamptz
);
"""

_V4 = """
-- Single flight for plans and lessons: who is generating a cache key right now (clients/db/claims.py).
CREATE TABLE lo_generation_claims (
    key         text PRIMARY KEY,
    claimed_at  timestamptz NOT NULL
);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "generation runs, research items and cache, lesson cache, AI usage", _V1),
    Migration(2, "run plans and lesson drafts", _V2),
    Migration(3, "plan cache", _V3),
    Migration(4, "generation claims (single flight)", _V4),
)

LATEST_VERSION = MIGRATIONS[-1].version


@dataclass(frozen=True)
class WebAppTable:
    name: str
    create_sql: str
    # The columns this app reads or writes (architecture.md §3).
    required_columns: tuple[str, ...]


MODULE_TABLE = WebAppTable(
    name="lessons_module",
    create_sql="""
CREATE TABLE lessons_module (
    id                       uuid PRIMARY KEY,
    roadmap_id               text,
    title                    text NOT NULL DEFAULT '',
    description              text NOT NULL DEFAULT '',
    difficulty               varchar(20),
    generation_status        varchar(20) NOT NULL DEFAULT 'not_started',
    generation_error         text,
    generation_started_at    timestamptz,
    generation_completed_at  timestamptz
)
""",
    required_columns=(
        "id",
        "roadmap_id",
        "title",
        "description",
        "difficulty",
        "generation_status",
        "generation_error",
        "generation_started_at",
        "generation_completed_at",
    ),
)

LESSON_TABLE = WebAppTable(
    name="lessons_lessoncontent",
    create_sql="""
CREATE TABLE lessons_lessoncontent (
    id                   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    module_id            uuid NOT NULL REFERENCES lessons_module (id) ON DELETE CASCADE,
    lesson_number        integer NOT NULL,
    title                text NOT NULL,
    content              text NOT NULL,
    source_attribution   jsonb NOT NULL DEFAULT '[]',
    generation_metadata  jsonb NOT NULL DEFAULT '{}',
    created_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (module_id, lesson_number)
)
""",
    required_columns=(
        "id",
        "module_id",
        "lesson_number",
        "title",
        "content",
        "source_attribution",
        "generation_metadata",
        "created_at",
    ),
)

WEB_APP_TABLES: tuple[WebAppTable, ...] = (MODULE_TABLE, LESSON_TABLE)

# Arbitrary constant: serialises concurrent `migrate` runs (e.g. two Function App instances).
MIGRATION_LOCK_KEY = 0x4C4F_4D49_4752  # "LOMIGR"
