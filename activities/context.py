"""What the lesson activities share: the run's module brief and research, read from PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from clients.ai import GenerationMeta, ProviderFailure
from clients.db import AiUsage, RunKey, get_module, record_ai_usage
from clients.db.research_items import get_research_items
from clients.services import Services
from domain.lessons import ModuleBrief
from domain.logging_fields import FieldValue, log_fields, with_fields
from domain.pipeline import instance_id_for
from domain.research import ResearchItem, rank_items

log = logging.getLogger("lesson_orchestrator.activity")


def log_outcome(activity: str, run: RunKey, outcome: str, **fields: FieldValue) -> None:
    """One structured line per activity execution: the fields are in the message (what the Functions host
    forwards to Application Insights) and in `extra` (for exporters that read record attributes)."""
    values = log_fields(
        activity=activity,
        module_id=run.module_id,
        run_id=run.run_id,
        instance_id=instance_id_for(run.module_id),
        outcome=outcome,
        **fields,
    )
    quiet = ("ok", "cached", "skipped", "completed", "current")
    level = logging.INFO if outcome in quiet else logging.WARNING
    log.log(level, "%s", with_fields(f"activity {activity}: {outcome}", values), extra=values)


class ModuleGone(LookupError):
    """The web app deleted the module while its run was going."""


def run_key(payload: dict[str, Any]) -> RunKey:
    return RunKey(module_id=str(payload["module_id"]), run_id=str(payload["run_id"]))


async def module_brief(services: Services, run: RunKey) -> ModuleBrief:
    """The module as the AI sees it: title, description, difficulty, learning style — nothing personal."""
    module = await get_module(services.pool, run.module_id)
    if module is None:
        raise ModuleGone(f"module {run.module_id} no longer exists")
    current = module.current_run
    requested = current if current is not None and current.run.run_id == run.run_id else None
    return ModuleBrief.from_mapping(
        {
            "module_id": module.id,
            "title": module.title,
            "description": module.description,
            "difficulty": (requested.difficulty if requested else None) or module.difficulty,
            "learning_style": requested.learning_style if requested else None,
        }
    )


async def research_for(
    services: Services, run: RunKey, topic: str, item_ids: Sequence[int]
) -> list[ResearchItem]:
    stored = await get_research_items(services.pool, run.run_id, item_ids)
    return rank_items(topic, [ResearchItem.from_dict(item.to_dict()) for item in stored])


async def record_usage(
    services: Services, run: RunKey, meta: GenerationMeta, failures: Sequence[ProviderFailure]
) -> None:
    """One row for the answer and one per provider that spent tokens before failing: all of it is billed."""
    # Usage latency is the provider's: the wait for this worker's concurrency slot is left out.
    upstream_ms = max(0, meta.latency_ms - meta.queued_ms)
    rows = [
        AiUsage(meta.provider, meta.model, meta.tokens_in, meta.tokens_out, upstream_ms, meta.cache_hit,
                run.module_id, run.run_id)
    ]
    rows += [
        AiUsage(f.provider, f.model, f.tokens_in, f.tokens_out, None, False, run.module_id, run.run_id)
        for f in failures
        if f.tokens_in or f.tokens_out
    ]
    for row in rows:
        await record_ai_usage(services.pool, row)
