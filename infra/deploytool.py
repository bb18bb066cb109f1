"""Helpers for infra/deploy.sh that need more than bash: the deployment zip and the secret parameters file.

    python3 infra/deploytool.py package --app-dir . --out build/app.zip
    python3 infra/deploytool.py secret-params --out secrets.parameters.json

`package` zips the app the way `func azure functionapp publish` would: every file except those matched by
`.funcignore` (gitignore syntax), without installing anything; the platform builds requirements.txt
remotely. `secret-params` turns secret environment variables into an ARM parameters file (mode 0600) so
no secret ever appears on a command line, in shell history or in deploy.sh's output.

Standard library only: it runs wherever `az` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Files the Python worker needs at the root of the package; a zip without them cannot index.
REQUIRED_FILES = ("function_app.py", "host.json", "requirements.txt")

# Environment variable -> @secure() parameter of infra/main.bicep.
SECRET_PARAMETERS: dict[str, str] = {
    "DATABASE_URL": "databaseUrl",
    "DEEPSEEK_API_KEY": "deepseekApiKey",
    "GROQ_API_KEY": "groqApiKey",
    "GEMINI_API_KEY": "geminiApiKey",
    "OPENAI_API_KEY": "openaiApiKey",
    "GITHUB_TOKEN": "githubToken",
    "STACKEXCHANGE_KEY": "stackexchangeKey",
    "YOUTUBE_API_KEY": "youtubeApiKey",
    "COMPLETION_WEBHOOK_SECRET": "completionWebhookSecret",
}
REQUIRED_SECRETS = ("DATABASE_URL",)
AI_KEYS = ("DEEPSEEK_API_KEY", "GROQ_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY")


class ToolError(Exception):
    """A problem the operator must fix; printed as one line, exit status 2."""


# ------------------------------------------------------------------------------------ .funcignore


@dataclass(frozen=True)
class IgnoreRule:
    regex: re.Pattern[str]
    negated: bool
    directory_only: bool
    anchored: bool


class FuncIgnore:
    """gitignore-style matching, as Core Tools applies `.funcignore` (last matching rule wins)."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.rules = [rule for rule in (_parse_rule(line) for line in lines) if rule is not None]

    @classmethod
    def from_file(cls, path: Path) -> FuncIgnore:
        return cls(path.read_text(encoding="utf-8").splitlines() if path.is_file() else [])

    def ignores(self, relative_path: str, is_dir: bool) -> bool:
        """Whether `relative_path` (POSIX separators, no leading ./) is excluded by its own rules.

        Parents are not consulted: `walk` never descends into an ignored directory, as git does."""
        ignored = False
        name = relative_path.rsplit("/", 1)[-1]
        for rule in self.rules:
            if rule.directory_only and not is_dir:
                continue
            target = relative_path if rule.anchored else name
            if rule.regex.fullmatch(target):
                ignored = not rule.negated
        return ignored

    def walk(self, root: Path) -> Iterator[Path]:
        """Files under `root` that are not ignored, in sorted order (reproducible zips)."""
        for directory, dirnames, filenames in os.walk(root):
            base = Path(directory)
            rel_base = base.relative_to(root).as_posix()
            prefix = "" if rel_base == "." else rel_base + "/"
            dirnames[:] = sorted(d for d in dirnames if not self.ignores(prefix + d, is_dir=True))
            for filename in sorted(filenames):
                if not self.ignores(prefix + filename, is_dir=False):
                    yield base / filename


def _parse_rule(line: str) -> IgnoreRule | None:
    pattern = line.rstrip()
    if not pattern or pattern.startswith("#"):
        return None
    negated = pattern.startswith("!")
    if negated:
        pattern = pattern[1:]
    if pattern.startswith("\\"):  # "\#name" / "\!name" are literal
        pattern = pattern[1:]
    directory_only = pattern.endswith("/")
    pattern = pattern.rstrip("/")
    # A slash anywhere but the end anchors the pattern to the root; otherwise it matches any basename.
    anchored = "/" in pattern
    pattern = pattern.lstrip("/")
    if not pattern:
        return None
    return IgnoreRule(re.compile(_translate(pattern)), negated, directory_only, anchored)


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


# ------------------------------------------------------------------------------------ commands


def build_package(app_dir: Path, out: Path) -> list[str]:
    """Write the deployment zip; returns the archived paths."""
    app_dir = app_dir.resolve()
    missing = [name for name in REQUIRED_FILES if not (app_dir / name).is_file()]
    if missing:
        raise ToolError(f"{app_dir} is not a function app folder: {', '.join(missing)} missing")
    ignore = FuncIgnore.from_file(app_dir / ".funcignore")
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in ignore.walk(app_dir):
            if path.resolve() in (out, partial):
                continue
            name = path.relative_to(app_dir).as_posix()
            archive.write(path, name)
            names.append(name)
    partial.replace(out)  # never leave a half-written zip where a deploy would pick it up
    return names


def write_secret_parameters(env: Mapping[str, str], out: Path) -> list[str]:
    """ARM parameters file holding the secrets present in `env`; returns the parameter names written."""
    missing = [name for name in REQUIRED_SECRETS if not env.get(name, "").strip()]
    if missing:
        raise ToolError(
            f"{', '.join(missing)} is not set: export it before deploying "
            "(postgresql://user:password@host:5432/database?sslmode=require); it is stored in Key Vault"
        )
    parameters = {
        parameter: {"value": env[variable].strip()}
        for variable, parameter in SECRET_PARAMETERS.items()
        if env.get(variable, "").strip()
    }
    document = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
        "contentVersion": "1.0.0.0",
        "parameters": parameters,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
    os.chmod(out, 0o600)  # O_CREAT's mode does not apply to a file that already existed
    return sorted(parameters)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploytool.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    package = commands.add_parser("package", help="zip the app without what .funcignore excludes")
    package.add_argument("--app-dir", type=Path, default=Path("."))
    package.add_argument("--out", type=Path, required=True)
    secrets = commands.add_parser("secret-params", help="write secrets from the environment to a file")
    secrets.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    env = os.environ if env is None else env
    try:
        if args.command == "package":
            names = build_package(args.app_dir, args.out)
            size = args.out.stat().st_size
            print(f"packaged {len(names)} files ({size} bytes) into {args.out}")
        else:
            written = write_secret_parameters(env, args.out)
            print(f"wrote {len(written)} secret parameters ({', '.join(written)}) to {args.out}")
            if not any(env.get(name, "").strip() for name in AI_KEYS):
                print(
                    f"warning: none of {', '.join(AI_KEYS)} is set; lessons fail unless OPENAI_BASE_URL "
                    "points at a keyless OpenAI-compatible server (set a key in Key Vault, or redeploy)",
                    file=sys.stderr,
                )
    except ToolError as exc:
        print(f"deploytool: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
