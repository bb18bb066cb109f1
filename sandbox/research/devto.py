"""Forem / Dev.to stand-in: /devto/api/articles (tag listing) and /devto/api/articles/search."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from sandbox.behaviour import Behaviour
from sandbox.content import Library
from sandbox.research.common import hang, int_param, json_bytes, stable_id, truncated


def article(record: dict[str, Any]) -> dict[str, Any]:
    user = record["user"]
    url = record.get("url") or f"https://dev.to/{user}/{record['slug']}"
    published = record["published_at"]
    return {
        "type_of": "article",
        "id": record["id"],
        "title": record["title"],
        "description": record["description"],
        "readable_publish_date": datetime.fromisoformat(published.replace("Z", "+00:00")).strftime("%b %-d"),
        "slug": record["slug"],
        "path": f"/{user}/{record['slug']}",
        "url": url,
        "comments_count": record.get("comments", 0),
        "public_reactions_count": record.get("reactions", 0),
        "collection_id": None,
        "published_timestamp": published,
        "language": "en",
        "subforem_id": 1,
        "positive_reactions_count": record.get("reactions", 0),
        "cover_image": None,
        "social_image": "",
        "canonical_url": url,
        "created_at": published,
        "edited_at": None,
        "crossposted_at": None,
        "published_at": published,
        "last_comment_at": published,
        "reading_time_minutes": record.get("reading_time", 5),
        # List items: tag_list is an ARRAY and tags a STRING (single articles swap them).
        "tag_list": record["tags"],
        "tags": ", ".join(record["tags"]),
        "user": {
            "name": user.replace("_", " ").title(),
            "username": user,
            "twitter_username": None,
            "github_username": None,
            "user_id": stable_id(user, 5_000_000),
            "website_url": None,
            "profile_image": "",
            "profile_image_90": "",
        },
    }


def register(app: web.Application, behaviour: Behaviour, library: Library) -> None:
    async def prelude(request: web.Request) -> web.StreamResponse | str:
        # Varnish refuses urllib-style User-Agents before the app sees the request.
        if "urllib" in request.headers.get("User-Agent", "urllib"):
            return web.Response(status=403, body=b"", headers={"Server": "Varnish"})
        fault = await behaviour.before("devto")
        if fault == "timeout":
            return await hang(request, behaviour)
        if fault == "429":
            return web.Response(
                status=429, text="Retry later\n", content_type="text/plain", headers={"Retry-After": "1"}
            )
        if fault == "error":
            return web.json_response({"error": "Internal Server Error", "status": 500}, status=500)
        return fault or ""

    def reply(records: list[dict[str, Any]], request: web.Request, fault: str) -> web.Response:
        per_page = int_param(request, "per_page", 30, 1, 1000)
        page = int_param(request, "page", 1, 1, 10_000)
        chosen = records[(page - 1) * per_page : page * per_page]
        payload = json_bytes([article(r) for r in chosen])
        return web.Response(
            body=truncated(payload) if fault == "malformed" else payload, content_type="application/json"
        )

    async def listing(request: web.Request) -> web.StreamResponse:
        checked = await prelude(request)
        if isinstance(checked, web.StreamResponse):
            return checked
        tag = request.query.get("tag") or request.query.get("tags", "").split(",")[0]
        records = library.records("devto", tag) if tag else []
        if tag:
            records = [r for r in records if tag in r["tags"]] or records
        return reply(records, request, checked)

    async def search(request: web.Request) -> web.StreamResponse:
        checked = await prelude(request)
        if isinstance(checked, web.StreamResponse):
            return checked
        return reply(library.records("devto", request.query.get("q", "")), request, checked)

    app.router.add_get("/devto/api/articles", listing)
    app.router.add_get("/devto/api/articles/search", search)
