"""Official-docs search stand-ins: MDN (/mdn/api/v1/search) and Read the Docs (/readthedocs/...)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from sandbox.behaviour import Behaviour
from sandbox.content import Library, words
from sandbox.research.common import hang, int_param, json_bytes, truncated

MDN_PAGE_ERROR = {
    "errors": {"page": [{"message": "Ensure this value is less than or equal to 10.", "code": "invalid"}]}
}


def _mark(text: str, query_words: list[str]) -> str:
    for word in query_words:
        text = re.sub(rf"(?i)\b({re.escape(word)})", r"<mark>\1</mark>", text)
    return text


def mdn_document(record: dict[str, Any], rank: int, query_words: list[str]) -> dict[str, Any]:
    path = record["mdn_url"]
    return {
        "mdn_url": path,
        "score": round(120.0 / (rank + 1), 2),
        "title": record["title"],
        "locale": "en-us",
        "slug": path.split("/docs/", 1)[-1].lower(),
        "popularity": round(0.02 / (rank + 1), 4),
        "summary": record["summary"],
        "highlight": {
            "body": [_mark(record["summary"][:120], query_words)],
            "title": [_mark(record["title"], query_words)],
        },
    }


def readthedocs_result(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "page",
        "project": {"slug": record["project"], "alias": None},
        "version": {"slug": "latest"},
        "title": record["title"],
        "domain": record["domain"],
        "path": record["path"],
        "highlights": {"title": []},
        "blocks": [
            {
                "type": "section",
                "id": record["section_id"],
                "title": record["section_title"],
                "content": record["content"],
                "highlights": {"title": [], "content": []},
            }
        ],
    }


def register(app: web.Application, behaviour: Behaviour, library: Library) -> None:
    async def prelude(request: web.Request) -> web.StreamResponse | str:
        fault = await behaviour.before("docs")
        if fault == "timeout":
            return await hang(request, behaviour)
        if fault == "429":
            return web.json_response(
                {"code": 429, "error": "Too Many Requests", "message": "rate limited"},
                status=429,
                headers={"Retry-After": "1"},
            )
        if fault == "error":
            return web.json_response(
                {"code": 500, "error": "Search error", "message": "internal server error"}, status=500
            )
        return fault or ""

    async def mdn(request: web.Request) -> web.StreamResponse:
        checked = await prelude(request)
        if isinstance(checked, web.StreamResponse):
            return checked
        query = request.query.get("q", "")
        if not query.strip():
            return web.json_response(
                {"errors": {"q": [{"message": "This field is required.", "code": "required"}]}}, status=400
            )
        try:
            page = int(request.query.get("page", "1"))
        except ValueError:
            page = 0
        if not 1 <= page <= 10:
            return web.json_response(MDN_PAGE_ERROR, status=400)
        records = library.records("mdn", query)
        chosen = records[(page - 1) * 10 : page * 10]  # size is fixed at 10, whatever the client asks
        query_words = words(query)
        body = {
            "documents": [mdn_document(r, i, query_words) for i, r in enumerate(chosen)],
            "metadata": {
                "took_ms": 12 + len(query),
                "size": 10,
                "page": page,
                "total": {"value": len(records), "relation": "eq"},
            },
            "suggestions": [],
        }
        payload = json_bytes(body)
        return web.Response(
            body=truncated(payload) if checked == "malformed" else payload, content_type="application/json"
        )

    async def readthedocs(request: web.Request) -> web.StreamResponse:
        checked = await prelude(request)
        if isinstance(checked, web.StreamResponse):
            return checked
        query = request.query.get("q", "")
        if not query.strip():
            return web.json_response({"detail": "Invalid query: q is required"}, status=400)
        page_size = int_param(request, "page_size", 50, 1, 50)
        records = library.records("readthedocs", query)
        body = {
            "count": len(records),
            "next": None,
            "previous": None,
            "projects": [
                {"slug": p, "versions": [{"slug": "latest"}]}
                for p in dict.fromkeys(r["project"] for r in records)
            ],
            "query": query,
            "fuzzy_fallback": False,
            "results": [readthedocs_result(r) for r in records[:page_size]],
        }
        payload = json_bytes(body)
        return web.Response(
            body=truncated(payload) if checked == "malformed" else payload, content_type="application/json"
        )

    app.router.add_get("/mdn/api/v1/search", mdn)
    app.router.add_get("/readthedocs/api/v3/search/", readthedocs)
