"""Research one source for the module and store what it found; the orchestration passes ids on."""

from __future__ import annotations

from typing import Any

from activities.context import ModuleGone, log_outcome, module_brief, run_key
from clients.db.research_items import replace_research_items
from clients.research import search_source
from clients.services import services


async def research_source(payload: dict[str, Any]) -> dict[str, Any]:
    shared = await services()
    run = run_key(payload)
    source = str(payload["source"])
    try:
        brief = await module_brief(shared, run)
    except ModuleGone as exc:
        return {"source": source, "status": "error", "error": str(exc), "item_ids": [], "latency_ms": 0}
    items, outcome = await search_source(
        source, brief.title, config=shared.research_config, cache=shared.research_cache
    )
    ids = await replace_research_items(shared.pool, run, source, [item.to_dict() for item in items])
    log_outcome("research_source", run, outcome.status, source=source, items=len(items),
                latency_ms=outcome.latency_ms, error=outcome.error)
    return {
        "source": source,
        "status": outcome.status,
        "error": outcome.error,
        "item_ids": ids or [],
        "latency_ms": outcome.latency_ms,
    }
