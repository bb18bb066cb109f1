"""Stack Exchange 2.3 stand-in: /stackexchange/2.3/search/advanced and /questions/{ids}/answers.

Like the real API every response is gzip-compressed, every error is HTTP 400 with
error_id/error_name/error_message, and keys are accepted only in the Authorization header (June 2026).
"""

from __future__ import annotations

import gzip
import re
from typing import Any

from aiohttp import web

from sandbox.behaviour import Behaviour
from sandbox.content import Library
from sandbox.research.common import entity_escape, hang, int_param, json_bytes, stable_id

QUOTA_WITH_KEY = 10_000
QUOTA_ANONYMOUS = 300


def _gzip(body: dict[str, Any], status: int = 200, *, cut: bool = False) -> web.Response:
    data = gzip.compress(json_bytes(body))
    if cut:
        data = data[: len(data) // 2]
    return web.Response(
        status=status,
        body=data,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json; charset=utf-8"},
    )


def _error(error_id: int, name: str, message: str) -> web.Response:
    return _gzip({"error_id": error_id, "error_message": message, "error_name": name}, status=400)


def _owner(name: str) -> dict[str, Any]:
    user_id = stable_id(name, 20_000_000)
    return {
        "account_id": user_id + 11,
        "reputation": 1000 + user_id % 90_000,
        "user_id": user_id,
        "user_type": "registered",
        "profile_image": f"https://www.gravatar.com/avatar/{user_id:x}?s=256",
        "display_name": name,
        "link": f"https://stackoverflow.com/users/{user_id}/{name.lower()}",
    }


def question(record: dict[str, Any], with_body: bool) -> dict[str, Any]:
    qid = record["question_id"]
    answer = record.get("accepted_answer")
    slug = re.sub(r"[^a-z0-9]+", "-", record["title"].lower()).strip("-")[:80]
    item: dict[str, Any] = {
        "tags": record["tags"],
        "owner": _owner(f"user{qid % 9973}"),
        "is_answered": bool(record.get("answer_count")),
        "view_count": record["view_count"],
        "answer_count": record["answer_count"],
        "score": record["score"],
        "last_activity_date": record["last_activity_date"],
        "creation_date": record["creation_date"],
        "question_id": qid,
        "content_license": "CC BY-SA 4.0",
        "link": record.get("link", f"https://stackoverflow.com/questions/{qid}/{slug}"),
        "title": entity_escape(record["title"]),
    }
    if answer:
        item["accepted_answer_id"] = answer["answer_id"]
    if with_body:
        item["body"] = record["body_html"]
    return item


def answers_for(record: dict[str, Any], with_body: bool) -> list[dict[str, Any]]:
    qid = record["question_id"]
    accepted = record.get("accepted_answer")
    found = []
    if accepted:
        found.append(
            {
                "answer_id": accepted["answer_id"],
                "score": accepted["score"],
                "is_accepted": True,
                "body": accepted["body_html"],
            }
        )
    found.append(
        {
            "answer_id": qid + 17,
            "score": max(0, record["score"] // 5),
            "is_accepted": False,
            "body": "<p>Another approach that also works, with trade-offs discussed in the comments.</p>",
        }
    )
    return [
        {
            "owner": _owner(f"answerer{a['answer_id'] % 997}"),
            "is_accepted": a["is_accepted"],
            "score": a["score"],
            "last_activity_date": record["last_activity_date"],
            "creation_date": record["creation_date"] + 3600,
            "answer_id": a["answer_id"],
            "question_id": qid,
            "content_license": "CC BY-SA 4.0",
            **({"body": a["body"]} if with_body else {}),
        }
        for a in found
    ]


def register(app: web.Application, behaviour: Behaviour, library: Library) -> None:
    served: dict[int, dict[str, Any]] = {}  # questions handed out, so /answers can find them
    used = {"with_key": 0, "anonymous": 0}

    async def common(request: web.Request) -> web.StreamResponse | str:
        """Fault, auth and site checks shared by both methods; returns the fault kind or a response."""
        fault = await behaviour.before("stackoverflow")
        if fault == "timeout":
            return await hang(request, behaviour)
        if fault == "429":
            if behaviour.random("stackoverflow") < 0.5:
                return _error(502, "throttle_violation", "Violation of backoff parameter")
            return _error(
                502,
                "throttle_violation",
                "too many requests from this IP, more requests available in 600 seconds",
            )
        if fault == "error":
            return _error(503, "temporarily_unavailable", "The service is temporarily unavailable")
        if "key" in request.query or "access_token" in request.query:
            return _error(
                400,
                "bad_parameter",
                "key and access_token must be sent in the Authorization "
                "header (Authorization: Bearer ...), not as query parameters",
            )
        if not request.query.get("site"):
            return _error(400, "bad_parameter", "site is required")
        return fault or ""

    def wrapper(request: web.Request, items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
        keyed = request.headers.get("Authorization", "").startswith("Bearer ")
        bucket = "with_key" if keyed else "anonymous"
        used[bucket] += 1
        quota = QUOTA_WITH_KEY if keyed else QUOTA_ANONYMOUS
        return {
            "items": items,
            "has_more": has_more,
            "quota_max": quota,
            "quota_remaining": max(0, quota - used[bucket]),
        }

    async def search(request: web.Request) -> web.StreamResponse:
        checked = await common(request)
        if isinstance(checked, web.StreamResponse):
            return checked
        query = request.query.get("q") or request.query.get("title") or ""
        if not query.strip():
            return _error(400, "bad_parameter", "at least one of q, title, tagged, body ... is required")
        pagesize = int_param(request, "pagesize", 30, 0, 100)
        records = library.records("stackoverflow", query)
        for record in records:
            served[record["question_id"]] = record
        with_body = request.query.get("filter") == "withbody"
        body = wrapper(request, [question(r, with_body) for r in records[:pagesize]], len(records) > pagesize)
        return _gzip(body, cut=checked == "malformed")

    async def answers(request: web.Request) -> web.StreamResponse:
        checked = await common(request)
        if isinstance(checked, web.StreamResponse):
            return checked
        try:
            ids = [int(part) for part in request.match_info["ids"].split(";") if part]
        except ValueError:
            return _error(400, "bad_parameter", "ids must be a ;-separated list of integers")
        if not ids or len(ids) > 100:
            return _error(400, "bad_parameter", "ids must contain between 1 and 100 ids")
        with_body = request.query.get("filter") == "withbody"
        found = [a for qid in ids if qid in served for a in answers_for(served[qid], with_body)]
        if request.query.get("sort") == "votes":
            found.sort(key=lambda a: -a["score"])
        pagesize = int_param(request, "pagesize", 30, 0, 100)
        return _gzip(wrapper(request, found[:pagesize], len(found) > pagesize), cut=checked == "malformed")

    app.router.add_get("/stackexchange/2.3/search/advanced", search)
    app.router.add_get("/stackexchange/2.3/questions/{ids}/answers", answers)
