"""Research sources (GitHub, Stack Overflow, YouTube, Dev.to, official docs): I/O only.

    config = ResearchConfig.from_env(os.environ)
    items, outcome = await search_source("github", "python asyncio", config=config)   # one source
    result = await gather_research("python asyncio", config=config)                    # all, ranked
"""

from clients.research.cache import InMemoryResearchCache, ResearchCache, normalize_query
from clients.research.config import ResearchConfig, ResearchConfigError
from clients.research.gates import PROCESS_GATES, SourceGates
from clients.research.gather import gather_research, search_source
from domain.research import (
    ALL_SOURCES,
    ResearchItem,
    ResearchResult,
    SourceOutcome,
    rank_items,
)

__all__ = [
    "ALL_SOURCES",
    "PROCESS_GATES",
    "InMemoryResearchCache",
    "ResearchCache",
    "ResearchConfig",
    "ResearchConfigError",
    "ResearchItem",
    "ResearchResult",
    "SourceGates",
    "SourceOutcome",
    "gather_research",
    "normalize_query",
    "rank_items",
    "search_source",
]
