"""Names and small payloads shared by the starter, the orchestration and the activities.

Activity inputs and outputs stay small (ids and short records); lesson text and research items
live in PostgreSQL. Everything here is plain data so the orchestration can import it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ORCHESTRATOR = "generate_module_lessons"
RESEARCH_SOURCES: tuple[str, ...] = ("github", "stackoverflow", "youtube", "devto", "docs")


class Activity:
    BEGIN_RUN = "begin_run"
    RESEARCH_SOURCE = "research_source"
    PLAN_LESSONS = "plan_lessons"
    GENERATE_LESSON = "generate_lesson"
    COMPLETE_RUN = "complete_run"
    FAIL_RUN = "fail_run"
    NOTIFY_COMPLETION = "notify_completion"


def instance_id_for(module_id: str) -> str:
    """One orchestration per module: the instance id is derived from the module id alone."""
    return f"module-{module_id}"


@dataclass(frozen=True)
class RunInput:
    """The orchestration input: which run of which module, and its budget."""

    module_id: str
    run_id: str
    request_id: str
    deadline_minutes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunInput:
        return cls(
            module_id=str(data["module_id"]),
            run_id=str(data["run_id"]),
            request_id=str(data["request_id"]),
            deadline_minutes=int(data["deadline_minutes"]),
        )


@dataclass
class Progress:
    """The orchestration's custom status: the `progress` object of GET .../generation."""

    stage: str = "queued"
    research: dict[str, str] = field(default_factory=lambda: dict.fromkeys(RESEARCH_SOURCES, "pending"))
    lessons_done: int = 0
    lessons_total: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "research": dict(self.research),
            "lessons": {"done": self.lessons_done, "total": self.lessons_total},
        }
