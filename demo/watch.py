"""Follow modules through `GET /api/modules/{id}/generation` until each reaches completed or failed."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from demo.stack import StackError

FINAL = ("completed", "failed")


@dataclass(frozen=True)
class ModuleView:
    """One poll of one module, as the status API reports it."""

    module_id: str
    title: str
    status: str = "unknown"
    stage: str = "waiting"
    research: dict[str, str] = field(default_factory=dict)
    lessons_done: int = 0
    lessons_total: int = 0
    error: str | None = None
    completed_at: datetime | None = None
    instance_id: str | None = None

    def finished_after(self, since: datetime) -> bool:
        """This module's run ended after `since` (a rerun starts from the previous run's final status)."""
        return self.status in FINAL and self.completed_at is not None and self.completed_at > since

    @classmethod
    def from_api(cls, module_id: str, title: str, body: dict[str, Any]) -> ModuleView:
        progress = body.get("progress") or {}
        lessons = progress.get("lessons") or {}
        completed_at = body.get("completed_at")
        return cls(
            module_id=module_id,
            title=title,
            status=str(body.get("status")),
            stage=str(progress.get("stage") or body.get("status")),
            research={str(k): str(v) for k, v in (progress.get("research") or {}).items()},
            lessons_done=int(lessons.get("done") or 0),
            lessons_total=int(lessons.get("total") or 0),
            error=body.get("error"),
            completed_at=datetime.fromisoformat(completed_at) if completed_at else None,
            instance_id=body.get("instance_id"),
        )


def fetch_status(base_url: str, module_id: str) -> dict[str, Any]:
    url = f"{base_url}/api/modules/{module_id}/generation"
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return dict(json.loads(answer.read()))
    except urllib.error.HTTPError as error:
        detail = error.read()[:500].decode(errors="replace")
        raise StackError(f"GET {url} answered {error.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise StackError(f"GET {url} failed: {error}") from None


def follow(
    base_url: str,
    modules: Sequence[tuple[str, str]],
    since: datetime,
    show: Callable[[list[ModuleView]], None],
    *,
    timeout: float,
    interval: float = 0.3,
    alive: Callable[[], None] = lambda: None,
) -> list[ModuleView]:
    """Poll (module_id, title) pairs and `show` each round until all ran to an end after `since`.

    `alive` raises when a process the run depends on died, so a crash is reported at once instead of
    at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        alive()
        views = [ModuleView.from_api(mid, title, fetch_status(base_url, mid)) for mid, title in modules]
        views = [_waiting(v) if _not_picked_up(v, since) else v for v in views]
        show(views)
        if all(v.finished_after(since) for v in views):
            return views
        if time.monotonic() > deadline:
            waiting = ", ".join(f"{v.title} ({v.stage})" for v in views if not v.finished_after(since))
            raise StackError(f"timed out after {timeout:g}s waiting for: {waiting}")
        time.sleep(interval)


def _not_picked_up(view: ModuleView, since: datetime) -> bool:
    """Before a starter applies the request the module shows its previous run (or none)."""
    return view.status == "not_started" or (view.status in FINAL and not view.finished_after(since))


def _waiting(view: ModuleView) -> ModuleView:
    return ModuleView(view.module_id, view.title, status="queued", stage="waiting")
