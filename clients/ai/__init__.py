"""AI providers (DeepSeek, Groq, Gemini, any OpenAI-compatible server) behind one fallback chain."""

from clients.ai.cache import InMemoryLessonCache, LessonCache
from clients.ai.chain import AIChain, GenerationMeta, LessonResult, PlanResult
from clients.ai.errors import AllProvidersFailed, ProviderFailure

__all__ = [
    "AIChain",
    "AllProvidersFailed",
    "GenerationMeta",
    "InMemoryLessonCache",
    "LessonCache",
    "LessonResult",
    "PlanResult",
    "ProviderFailure",
]
