"""YouTube Data API v3 stand-in: /youtube/v3/search (search.list, part=snippet)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.behaviour import Behaviour
from sandbox.content import Library
from sandbox.research.common import entity_escape, hang, int_param, stable_id

# Verbatim text of the real quotaExceeded body (googleapis/google-api-php-client#2055).
QUOTA_MESSAGE = (
    "The request cannot be completed because you have exceeded your "
    '<a href="/youtube/v3/getting-started#quota">quota</a>.'
)
UNREGISTERED_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)


def google_error(
    code: int, message: str, reason: str, domain: str = "global", status: str | None = None
) -> web.Response:
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason}],
    }
    if status:
        error["status"] = status
    return web.json_response({"error": error}, status=code)


def video(record: dict[str, Any]) -> dict[str, Any]:
    vid = record["video_id"]
    thumbs = {
        name: {"url": f"https://i.ytimg.com/vi/{vid}/{file}", "width": w, "height": h}
        for name, file, w, h in (
            ("default", "default.jpg", 120, 90),
            ("medium", "mqdefault.jpg", 320, 180),
            ("high", "hqdefault.jpg", 480, 360),
        )
    }
    return {
        "kind": "youtube#searchResult",
        "etag": f"{stable_id(vid):x}",
        "id": {"kind": "youtube#video", "videoId": vid},
        "snippet": {
            "publishedAt": record["published_at"],
            "channelId": f"UC{stable_id(record['channel']):022d}"[:24],
            # search.list HTML-escapes titles and descriptions.
            "title": entity_escape(record["title"]),
            "description": entity_escape(record["description"]),
            "thumbnails": thumbs,
            "channelTitle": entity_escape(record["channel"]),
            "liveBroadcastContent": "none",
            "publishTime": record["published_at"],
        },
    }


def register(app: web.Application, behaviour: Behaviour, library: Library) -> None:
    async def search(request: web.Request) -> web.StreamResponse:
        fault = await behaviour.before("youtube")
        if fault == "timeout":
            return await hang(request, behaviour)
        if not (request.query.get("key") or request.headers.get("X-Goog-Api-Key")):
            return google_error(403, UNREGISTERED_MESSAGE, "forbidden", status="PERMISSION_DENIED")
        if fault == "429":
            return google_error(403, QUOTA_MESSAGE, "quotaExceeded", domain="youtube.quota")
        if fault == "error":
            return google_error(500, "Backend Error", "backendError", status="INTERNAL")
        if fault == "malformed":
            return web.Response(
                status=200,
                content_type="text/html",
                text="<!DOCTYPE html><html lang=en><title>Error 502 (Server Error)!!1</title>"
                "<p><b>502.</b> That’s an error.</p></html>",
            )
        if request.query.get("part") != "snippet":
            return google_error(400, "Required parameter: part", "required", status="INVALID_ARGUMENT")
        query = request.query.get("q", "")
        max_results = int_param(request, "maxResults", 5, 0, 50)
        records = library.records("youtube", query) if request.query.get("type", "video") == "video" else []
        items = [video(r) for r in records[:max_results]]
        body = {
            "kind": "youtube#searchListResponse",
            "etag": f"{stable_id(query):x}",
            "regionCode": "US",
            "pageInfo": {"totalResults": len(records) * 1000, "resultsPerPage": max_results},
            "items": items,
        }
        if len(records) > max_results:
            body["nextPageToken"] = "CAUQAA"
        return web.json_response(body)

    app.router.add_get("/youtube/v3/search", search)
