"""GitHub REST search stand-in: /github/search/repositories and /github/search/issues."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from sandbox.behaviour import Behaviour
from sandbox.content import Library
from sandbox.research.common import hang, int_param, json_bytes, stable_id, truncated

API = "https://api.github.com"
DOCS = "https://docs.github.com/rest/search/search"
PRIMARY_MESSAGE = (
    "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated requests get a higher "
    "rate limit. Check out the documentation for more details.)"
)
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


class RateWindow:
    """The x-ratelimit-* headers of the search resource.

    Only the 429 fault exhausts the window: clients stop at `remaining: 0`, and a demo or test run
    must not trip over a limit it did not ask for. Otherwise `remaining` counts down to 1.
    """

    def __init__(self) -> None:
        self.window_start = 0
        self.used = 0

    def headers(self, authenticated: bool, now: float, *, exhausted: bool = False) -> dict[str, str]:
        window = int(now) // 60 * 60
        if window != self.window_start:
            self.window_start, self.used = window, 0
        self.used += 1
        limit = 30 if authenticated else 10
        remaining = 0 if exhausted else max(1, limit - self.used)
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-used": str(limit - remaining),
            "x-ratelimit-reset": str(window + 60),
            "x-ratelimit-resource": "search",
            "X-GitHub-Media-Type": "github.v3; format=json",
        }


def _owner(login: str) -> dict[str, Any]:
    return {
        "login": login,
        "id": stable_id(login, 10_000_000),
        "node_id": f"MDQ6VXNlcj{login}",
        "avatar_url": f"https://avatars.githubusercontent.com/{login}",
        "gravatar_id": "",
        "url": f"{API}/users/{login}",
        "html_url": f"https://github.com/{login}",
        "type": "Organization",
        "site_admin": False,
    }


def repository(record: dict[str, Any]) -> dict[str, Any]:
    full_name = record["full_name"]
    owner, _, name = full_name.partition("/")
    return {
        "id": stable_id(full_name),
        "node_id": f"R_kgDO{stable_id(full_name, 10**8)}",
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": _owner(owner),
        "html_url": record.get("html_url", f"https://github.com/{full_name}"),
        "description": record.get("description"),
        "fork": False,
        "url": f"{API}/repos/{full_name}",
        "created_at": record["created_at"],
        "updated_at": record["pushed_at"],
        "pushed_at": record["pushed_at"],
        "homepage": record.get("homepage") or None,
        "size": 4096,
        "stargazers_count": record["stars"],
        "watchers_count": record["stars"],
        "language": record.get("language"),
        "forks_count": record.get("forks", 0),
        "open_issues_count": 42,
        "archived": False,
        "disabled": False,
        "license": None,
        "topics": record.get("topics", []),
        "visibility": "public",
        "default_branch": "main",
        "score": 1.0,
    }


def issue(record: dict[str, Any]) -> dict[str, Any]:
    repo, number = record["repo"], record["number"]
    return {
        "url": f"{API}/repos/{repo}/issues/{number}",
        "repository_url": f"{API}/repos/{repo}",
        "html_url": f"https://github.com/{repo}/issues/{number}",
        "id": number * 7,
        "number": number,
        "title": record["title"],
        "user": _owner(repo.split("/")[0]),
        "labels": [
            {"name": label, "color": "ededed", "default": False} for label in record.get("labels", [])
        ],
        "state": record.get("state", "open"),
        "locked": False,
        "comments": record.get("comments", 0),
        "created_at": record["created_at"],
        "updated_at": record["updated_at"],
        "closed_at": None,
        "author_association": "CONTRIBUTOR",
        "body": record.get("body"),
        "reactions": {"total_count": record.get("reactions", 0), "+1": record.get("reactions", 0)},
        "state_reason": None,
        "score": 1.0,
    }


def register(app: web.Application, behaviour: Behaviour, library: Library) -> None:
    window = RateWindow()

    def search(section: str, render: Any) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            fault = await behaviour.before("github")
            now = time.time()
            authenticated = "Authorization" in request.headers
            if fault == "timeout":
                return await hang(request, behaviour)
            if fault == "429":
                if behaviour.random("github") < 0.5:
                    headers = window.headers(authenticated, now, exhausted=True)
                    body = {"message": PRIMARY_MESSAGE, "documentation_url": f"{DOCS}#rate-limiting"}
                else:
                    headers = {**window.headers(authenticated, now), "retry-after": "60"}
                    body = {
                        "message": SECONDARY_MESSAGE,
                        "documentation_url": f"{DOCS}#secondary-rate-limits",
                    }
                return web.json_response(body, status=403, headers=headers)
            if fault == "error":
                return web.json_response({"message": "Server Error"}, status=502)
            query = request.query.get("q", "").strip()
            if not query:
                body = {
                    "message": "Validation Failed",
                    "errors": [{"resource": "Search", "field": "q", "code": "missing"}],
                    "documentation_url": DOCS,
                    "status": "422",
                }
                return web.json_response(body, status=422)
            per_page = int_param(request, "per_page", 30, 1, 100)
            records = library.records(section, query)
            body = {
                "total_count": len(records),
                "incomplete_results": False,
                "items": [render(r) for r in records[:per_page]],
            }
            payload = json_bytes(body)
            if fault == "malformed":
                payload = truncated(payload)
            return web.Response(
                body=payload, content_type="application/json", headers=window.headers(authenticated, now)
            )

        return handler

    app.router.add_get("/github/search/repositories", search("github", repository))
    app.router.add_get("/github/search/issues", search("github_issues", issue))
