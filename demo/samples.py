"""The sample modules the demo generates: rows in lessons_module, as the web app would create them."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import asyncpg

# Fixed ids: a second demo run finds the same modules (and regenerates them with a new request id).
_NAMESPACE = uuid.UUID("6f1e4d1c-4a57-4c1e-9d3b-2f5a1c0d7e11")


@dataclass(frozen=True)
class SampleModule:
    title: str
    description: str
    difficulty: str
    learning_style: str

    @property
    def id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, self.title))


SAMPLE_MODULES = (
    SampleModule(
        "Python asyncio",
        "Event loops, tasks, cancellation and structured concurrency with TaskGroup.",
        "intermediate",
        "hands-on",
    ),
    SampleModule(
        "Docker networking",
        "Bridge and host networks, port publishing, DNS between containers and Compose networks.",
        "beginner",
        "visual",
    ),
)


def seed_modules(database_url: str, modules: tuple[SampleModule, ...] = SAMPLE_MODULES) -> None:
    """Insert the sample modules unless they exist (their generation status is left as it is)."""

    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            for module in modules:
                await conn.execute(
                    """INSERT INTO lessons_module (id, title, description, difficulty)
                       VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING""",
                    uuid.UUID(module.id), module.title, module.description, module.difficulty,
                )
        finally:
            await conn.close()

    asyncio.run(run())
