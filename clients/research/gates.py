"""Per-process "stop this source for the window" state, so an exhausted quota costs no more requests."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Block:
    until: float  # epoch seconds
    reason: str


class SourceGates:
    """Blocks keyed by source (or `source method` for Stack Exchange's per-method backoff)."""

    def __init__(self) -> None:
        self._blocks: dict[str, Block] = {}
        self._lock = threading.Lock()

    def blocked(self, key: str, now: float) -> Block | None:
        with self._lock:
            block = self._blocks.get(key)
            if block is not None and block.until <= now:
                del self._blocks[key]
                return None
            return block

    def block(self, key: str, until: float, reason: str) -> None:
        with self._lock:
            current = self._blocks.get(key)
            if current is None or until > current.until:
                self._blocks[key] = Block(until=until, reason=reason)

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()


# One per process: the window outlives a single activity call (quota resets are hours away).
PROCESS_GATES = SourceGates()
