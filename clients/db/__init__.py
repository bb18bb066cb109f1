"""PostgreSQL access (asyncpg): pools, migrations, module status and run fence, caches, AI usage."""

from clients.db.drafts import (
    MissingLessonDrafts,
    complete_run_from_drafts,
    load_lesson_drafts,
    load_plan,
    save_lesson_draft,
    save_plan,
)
from clients.db.lesson_cache import PgLessonCache
from clients.db.migrations import MigrationReport, SchemaState, migrate, schema_state
from clients.db.modules import ModuleSummary, list_modules_by_status
from clients.db.pool import DatabaseUnavailable, PoolOptions, close_pools, connect, get_pool
from clients.db.prices import estimate_cost, price_for
from clients.db.research_cache import PgResearchCache
from clients.db.research_items import (
    StoredResearchItem,
    get_research_items,
    list_research_items,
    replace_research_items,
)
from clients.db.runs import (
    LessonRow,
    ModuleNotFound,
    ModuleRecord,
    RequestKind,
    RequestOutcome,
    RunKey,
    RunRecord,
    RunRef,
    WriteResult,
    complete_run,
    complete_run_with,
    fail_run,
    get_module,
    get_run,
    lock_active_run,
    mark_in_progress,
    reject_request,
    request_generation,
)
from clients.db.usage import AiUsage, UsageLine, record_ai_usage, usage_report

__all__ = [
    "AiUsage",
    "DatabaseUnavailable",
    "LessonRow",
    "MigrationReport",
    "MissingLessonDrafts",
    "ModuleNotFound",
    "ModuleRecord",
    "ModuleSummary",
    "PgLessonCache",
    "PgResearchCache",
    "PoolOptions",
    "RequestKind",
    "RequestOutcome",
    "RunKey",
    "RunRecord",
    "RunRef",
    "SchemaState",
    "StoredResearchItem",
    "UsageLine",
    "WriteResult",
    "close_pools",
    "complete_run",
    "complete_run_from_drafts",
    "complete_run_with",
    "connect",
    "estimate_cost",
    "fail_run",
    "get_module",
    "get_pool",
    "get_research_items",
    "get_run",
    "list_modules_by_status",
    "list_research_items",
    "load_lesson_drafts",
    "load_plan",
    "lock_active_run",
    "mark_in_progress",
    "migrate",
    "price_for",
    "record_ai_usage",
    "reject_request",
    "replace_research_items",
    "request_generation",
    "save_lesson_draft",
    "save_plan",
    "schema_state",
    "usage_report",
]
