"""Research settings (architecture.md §3) as one dataclass, built from a Mapping, never os.environ."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from clients.http import RetryPolicy, register_secret

DEFAULT_URLS = {
    "GITHUB_API_URL": "https://api.github.com",
    "STACKEXCHANGE_API_URL": "https://api.stackexchange.com/2.3",
    "YOUTUBE_API_URL": "https://www.googleapis.com/youtube/v3",
    "DEVTO_API_URL": "https://dev.to/api",
    "DOCS_SEARCH_URL": "https://developer.mozilla.org/api/v1/search",
}


class ResearchConfigError(ValueError):
    """One line per bad setting, naming it (values of secrets are never echoed)."""


@dataclass(frozen=True)
class ResearchConfig:
    github_api_url: str = DEFAULT_URLS["GITHUB_API_URL"]
    github_token: str | None = field(default=None, repr=False)
    stackexchange_api_url: str = DEFAULT_URLS["STACKEXCHANGE_API_URL"]
    stackexchange_key: str | None = field(default=None, repr=False)
    stackexchange_site: str = "stackoverflow"
    youtube_api_url: str = DEFAULT_URLS["YOUTUBE_API_URL"]
    youtube_api_key: str | None = field(default=None, repr=False)
    devto_api_url: str = DEFAULT_URLS["DEVTO_API_URL"]
    docs_search_url: str = DEFAULT_URLS["DOCS_SEARCH_URL"]
    request_timeout_s: float = 15.0
    # Bounds one source end to end (all its requests and retries), so a slow source cannot hold
    # the fan-in; the module's own deadline sits above this.
    source_budget_s: float = 45.0
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=3, budget_s=20.0))
    # Stack Exchange `backoff` waits up to this long are slept through; longer ones skip the source.
    max_backoff_wait_s: float = 10.0

    def __post_init__(self) -> None:
        for secret in (self.github_token, self.stackexchange_key, self.youtube_api_key):
            register_secret(secret)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ResearchConfig:
        """Read the research settings; empty values count as unset. Raises ResearchConfigError."""

        def value(name: str) -> str | None:
            raw = env.get(name)
            return raw.strip() if raw and raw.strip() else None

        problems: list[str] = []
        urls: dict[str, str] = {}
        for name, default in DEFAULT_URLS.items():
            url = (value(name) or default).rstrip("/")
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append(f"{name} must be an absolute http(s) URL, got {url[:80]!r}")
            urls[name] = url
        if problems:
            raise ResearchConfigError("\n".join(problems))
        return cls(
            github_api_url=urls["GITHUB_API_URL"],
            github_token=value("GITHUB_TOKEN"),
            stackexchange_api_url=urls["STACKEXCHANGE_API_URL"],
            stackexchange_key=value("STACKEXCHANGE_KEY"),
            youtube_api_url=urls["YOUTUBE_API_URL"],
            youtube_api_key=value("YOUTUBE_API_KEY"),
            devto_api_url=urls["DEVTO_API_URL"],
            docs_search_url=urls["DOCS_SEARCH_URL"],
        )

    @property
    def docs_kind(self) -> str:
        """Which docs search API DOCS_SEARCH_URL points at: 'readthedocs' (…/api/v3/search) or 'mdn'."""
        path = urlsplit(self.docs_search_url).path.rstrip("/")
        return "readthedocs" if path.endswith("/api/v3/search") else "mdn"
