"""What every command gets: the settings source and the output streams."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from domain.settings import Need, Settings, SettingsError, load_settings, settings_environment


@dataclass(frozen=True)
class CommandContext:
    env: dict[str, str]
    app_dir: Path
    out: TextIO
    err: TextIO

    def values(self) -> dict[str, str]:
        """Environment first, then local.settings.json Values (raises SettingsError on a broken file)."""
        return settings_environment(self.env, self.app_dir)

    def settings(self, needs: Collection[Need] = (Need.DATABASE,)) -> Settings:
        return load_settings(self.env, self.app_dir, needs=needs)

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def warn(self, line: str) -> None:
        print(line, file=self.err, flush=True)

    def settings_failed(self, error: SettingsError) -> int:
        for problem in error.problems:
            self.warn(f"error: {problem}")
        return 1
