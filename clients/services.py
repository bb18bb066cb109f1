"""What a worker process builds once from its settings: the database pool, the AI chain, research config.

Settings are read from the environment the Functions host gives the worker (no local.settings.json
fallback here: the host has already applied it). A missing or invalid setting raises SettingsError
with one line per problem at the first function call, naming each setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from clients.ai import AIChain
from clients.db import PgLessonCache, PgResearchCache, get_pool
from clients.db.claims import GenerationClaims, SingleFlightLessonCache
from clients.db.plan_cache import PgPlanCache
from clients.research.config import ResearchConfig
from domain.settings import Settings, parse_settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    pool: asyncpg.Pool
    research_config: ResearchConfig
    research_cache: PgResearchCache
    lesson_cache: SingleFlightLessonCache
    plan_cache: PgPlanCache
    claims: GenerationClaims
    env: Mapping[str, str]

    def ai_chain(self) -> AIChain:
        """Built per use: provider settings errors must fail the AI step, not the whole worker."""
        return AIChain.from_env(self.env)


_settings_cache: dict[tuple[tuple[str, str], ...], Settings] = {}


async def services(env: Mapping[str, str] | None = None) -> Services:
    env = dict(os.environ if env is None else env)
    key = tuple(sorted(env.items()))
    settings = _settings_cache.get(key)
    if settings is None:
        settings = _settings_cache[key] = parse_settings(env)
    assert settings.database_url is not None  # parse_settings requires the database by default
    pool = await get_pool(settings.database_url)
    claims = GenerationClaims(pool)
    return Services(
        settings=settings,
        pool=pool,
        research_config=ResearchConfig.from_env(env),
        research_cache=PgResearchCache(pool, settings.research_cache_ttl_hours),
        lesson_cache=SingleFlightLessonCache(PgLessonCache(pool), claims),
        plan_cache=PgPlanCache(pool),
        claims=claims,
        env=env,
    )
