"""Show module progress: a live `rich` table on a terminal, one plain line per change otherwise."""

from __future__ import annotations

import sys
from typing import Any, Protocol, TextIO

from demo.watch import ModuleView

MARKS = {"done": "✓", "failed": "✗", "skipped": "–", "pending": "…"}


class ProgressDisplay(Protocol):
    def show(self, views: list[ModuleView]) -> None: ...

    def close(self) -> None: ...


def research_summary(view: ModuleView) -> str:
    return " ".join(f"{source}{MARKS.get(state, '?')}" for source, state in view.research.items()) or "-"


class PlainProgress:
    """For logs and CI: a line whenever a module's stage, research or lesson count changes."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.last: dict[str, tuple[Any, ...]] = {}

    def show(self, views: list[ModuleView]) -> None:
        for view in views:
            key = (view.stage, tuple(sorted(view.research.items())), view.lessons_done, view.lessons_total)
            if self.last.get(view.module_id) == key:
                continue
            self.last[view.module_id] = key
            lessons = f"{view.lessons_done}/{view.lessons_total}" if view.lessons_total else "-"
            print(f"  {view.title:<20} {view.stage:<20} research: {research_summary(view):<58} "
                  f"lessons: {lessons}", file=self.out, flush=True)

    def close(self) -> None:
        pass


class RichProgress:
    """A live table: stage, research sources and a lessons bar per module."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console()
        self.live = Live(console=self.console, refresh_per_second=8, transient=False)
        self.live.start()

    def show(self, views: list[ModuleView]) -> None:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("module", "stage", "research", "lessons", ""):
            table.add_column(column, no_wrap=True, overflow="ellipsis")
        for view in views:
            colour = {"completed": "green", "failed": "red"}.get(view.stage, "yellow")
            total = max(view.lessons_total, 1)
            table.add_row(
                view.title,
                f"[{colour}]{view.stage}[/]",
                research_summary(view),
                ProgressBar(total=total, completed=view.lessons_done, width=20),
                f"{view.lessons_done}/{view.lessons_total}" if view.lessons_total else "",
            )
        self.live.update(table)

    def close(self) -> None:
        self.live.stop()


def make_display(plain: bool, out: TextIO = sys.stdout) -> ProgressDisplay:
    if plain or not out.isatty():
        return PlainProgress(out)
    try:
        return RichProgress()
    except ImportError:  # rich comes with requirements-dev.txt; plain lines still work without it
        return PlainProgress(out)
