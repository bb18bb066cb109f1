"""Plan the module's lessons and write each one: AI calls through the provider chain, results in
PostgreSQL (first write wins, so a retried activity returns what the first attempt stored)."""

from __future__ import annotations

from typing import Any

from activities.context import ModuleGone, log_outcome, module_brief, record_usage, research_for, run_key
from clients.ai import AllProvidersFailed, GenerationMeta
from clients.db import LessonRow, RunKey
from clients.db.drafts import load_plan, save_lesson_draft, save_plan
from clients.http import ConfigurationError
from clients.services import Services, services
from domain.lessons import LessonPlan, ModuleBrief
from domain.prompts import lesson_cache_key, plan_cache_key


async def plan_lessons(payload: dict[str, Any]) -> dict[str, Any]:
    shared = await services()
    run = run_key(payload)
    stored = await load_plan(shared.pool, run.run_id)
    if stored is None:
        try:
            brief = await module_brief(shared, run)
            planned = await _plan(shared, run, brief, payload.get("item_ids", []))
        except (AllProvidersFailed, ConfigurationError, ModuleGone) as exc:
            log_outcome("plan_lessons", run, "failed", error=str(exc))
            return {"ok": False, "error": str(exc)}
        log_outcome("plan_lessons", run, "ok", provider=planned["meta"]["provider"],
                    cache_hit=planned["meta"]["cache_hit"], latency_ms=planned["meta"]["latency_ms"])
        stored = await save_plan(shared.pool, run, {**planned, "item_ids": list(payload.get("item_ids", []))})
        if stored is None:
            return {"ok": False, "error": "the run was superseded while planning"}
    plan = LessonPlan.model_validate(stored["plan"])
    return {
        "ok": True,
        "lessons": [{"number": spec.number, "title": spec.title} for spec in plan.lessons],
        "provider": stored["meta"]["provider"],
    }


async def _plan(shared: Services, run: RunKey, brief: ModuleBrief, item_ids: list[int]) -> dict[str, Any]:
    """The plan for this topic from the plan cache, else from the AI chain (then cached).

    Single flight: while another run is planning the same topic, wait for its plan instead."""
    key = plan_cache_key(brief)
    claim = f"plan:{key}"
    cached = await shared.plan_cache.get(key)
    if cached is None and not await shared.claims.claim(claim):
        cached = await shared.claims.wait_for(lambda: shared.plan_cache.get(key))
    if cached is not None:
        free = {"tokens_in": 0, "tokens_out": 0, "latency_ms": 0, "attempts": 0, "cache_hit": True}
        meta = GenerationMeta.from_dict({**cached["meta"], **free})
        await record_usage(shared, run, meta, [])
        return {"plan": cached["plan"], "meta": meta.to_dict()}
    try:
        research = await research_for(shared, run, brief.title, item_ids)
        result = await shared.ai_chain().plan_lessons(brief, research)
        await record_usage(shared, run, result.meta, result.failures)
        cached = await shared.plan_cache.put(key, result.plan.to_dict(), result.meta.to_dict())
    finally:
        await shared.claims.release(claim)
    # A concurrent run of the same topic may have cached its plan first: use that one (its lessons'
    # cache keys are the ones other runs will share); the usage row above still bills our call.
    return {"plan": cached["plan"], "meta": result.meta.to_dict()}


async def generate_lesson(payload: dict[str, Any]) -> dict[str, Any]:
    shared = await services()
    run = run_key(payload)
    number = int(payload["number"])
    stored = await load_plan(shared.pool, run.run_id)
    if stored is None:
        return {"ok": False, "error": "the run has no stored lesson plan"}
    spec = next(s for s in LessonPlan.model_validate(stored["plan"]).lessons if s.number == number)
    try:
        brief = await module_brief(shared, run)
    except ModuleGone as exc:
        log_outcome("generate_lesson", run, "failed", lesson=number, error=str(exc))
        return {"ok": False, "error": str(exc)}
    try:
        research = await research_for(shared, run, brief.title, stored.get("item_ids", []))
        result = await shared.ai_chain().generate_lesson(brief, spec, research, cache=shared.lesson_cache)
    except (AllProvidersFailed, ConfigurationError) as exc:
        # Runs waiting for this lesson then generate it themselves instead of waiting out the claim.
        await shared.lesson_cache.abandon(lesson_cache_key(brief, spec))
        log_outcome("generate_lesson", run, "failed", lesson=number, error=str(exc))
        return {"ok": False, "error": str(exc)}
    await record_usage(shared, run, result.meta, result.failures)
    log_outcome("generate_lesson", run, "ok", lesson=number, provider=result.meta.provider,
                model=result.meta.model, cache_hit=result.meta.cache_hit, latency_ms=result.meta.latency_ms,
                tokens_in=result.meta.tokens_in, tokens_out=result.meta.tokens_out)
    cited = set(result.lesson.sources)
    attribution = [
        {"source": item.source, "title": item.title, "url": item.url}
        for item in research
        if item.url in cited
    ]
    await save_lesson_draft(
        shared.pool,
        run,
        LessonRow(
            lesson_number=number,
            title=result.lesson.title,
            content=result.lesson.content_markdown,
            source_attribution=attribution,
            generation_metadata=result.meta.to_dict(),
        ),
    )
    meta = result.meta
    return {"ok": True, "number": number, "provider": meta.provider, "cache_hit": meta.cache_hit}
