"""How `lessonctl status` shows a module: a block of `name  value` lines, and while watching a live
progress bar on a terminal (rich) or one line per change otherwise."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, TextIO

from clients.db import ModuleRecord


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


def _lessons(progress: dict[str, Any] | None) -> tuple[int, int]:
    lessons = (progress or {}).get("lessons") or {}
    return int(lessons.get("done") or 0), int(lessons.get("total") or 0)


def stage_of(module: ModuleRecord, progress: dict[str, Any] | None) -> str:
    """PostgreSQL is the truth for the final states; the orchestration knows the stage in between."""
    if module.generation_status in ("completed", "failed", "not_started") or not progress:
        return module.generation_status
    return str(progress.get("stage") or module.generation_status)


def research_line(progress: dict[str, Any] | None) -> str:
    research = (progress or {}).get("research") or {}
    return " ".join(f"{source}={state}" for source, state in research.items()) or "-"


def describe(module: ModuleRecord, progress: dict[str, Any] | None, note: str | None) -> list[str]:
    run = module.current_run
    lines = [
        f"module     {module.id}  {module.title!r}",
        f"status     {module.generation_status}",
        f"started    {_when(module.generation_started_at)}",
        f"completed  {_when(module.generation_completed_at)}",
        f"lessons    {module.lesson_count}",
    ]
    if module.generation_error:
        lines.append(f"error      {' '.join(module.generation_error.split())}")
    if run is not None:
        lines.append(f"run        {run.run.run_id} ({run.status}), request {run.run.request_id}, "
                     f"instance {run.run.instance_id}")
    if progress:
        done, total = _lessons(progress)
        lines.append(f"progress   stage {stage_of(module, progress)}; lessons {done}/{total}; "
                     f"research {research_line(progress)}")
    elif note:
        lines.append(f"progress   ({note})")
    return lines


class StatusDisplay(Protocol):
    def show(self, module: ModuleRecord, progress: dict[str, Any] | None, waiting: bool = False) -> None: ...

    def close(self) -> None: ...


class LineDisplay:
    """For logs and pipes: one line whenever the stage, research or lesson count changes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.last: tuple[Any, ...] | None = None

    def show(self, module: ModuleRecord, progress: dict[str, Any] | None, waiting: bool = False) -> None:
        done, total = _lessons(progress)
        line = (f"{stage_of(module, progress)}: lessons {done}/{total}; research {research_line(progress)}"
                if not waiting else "waiting: the request is not picked up yet")
        if line != self.last:
            self.last = line
            print(line, file=self.out, flush=True)

    def close(self) -> None:
        pass


class BarDisplay:
    """On a terminal: a rich progress bar over the lessons, the stage and research as its description."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        )
        self.task = self.progress.add_task("queued", total=None)
        self.progress.start()

    def show(self, module: ModuleRecord, progress: dict[str, Any] | None, waiting: bool = False) -> None:
        if waiting:
            self.progress.update(self.task, description="waiting for the queue", completed=0, total=None)
            return
        done, total = _lessons(progress)
        research = (progress or {}).get("research") or {}
        finished = sum(1 for state in research.values() if state != "pending")
        description = f"{stage_of(module, progress):<11} research {finished}/{len(research) or 5}"
        self.progress.update(self.task, description=description, completed=done, total=total or None)

    def close(self) -> None:
        self.progress.stop()


def make_display(out: TextIO) -> StatusDisplay:
    if out.isatty():
        try:
            return BarDisplay()
        except ImportError:  # rich comes with requirements-dev.txt; lines work without it
            pass
    return LineDisplay(out)
