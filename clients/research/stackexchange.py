"""Stack Exchange API 2.3: Stack Overflow questions for a topic, each with its best answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from clients.http import (
    ConfigurationError,
    HttpResponse,
    QuotaExhausted,
    RateLimited,
    UpstreamError,
    UpstreamHTTPError,
    error_for_status,
    seconds_in_text,
)
from clients.research.parsing import collect_items, require_list
from clients.research.transport import SourceCall
from domain.research import ResearchItem, html_to_text, popularity_score

SOURCE = "stackoverflow"
SEARCH_METHOD = "search/advanced"
ANSWERS_METHOD = "questions/answers"
SCORE_SATURATION = 2_000
AUTH_ERROR_IDS = frozenset({401, 402, 403, 405, 406})
RETRYABLE_ERROR_IDS = frozenset({500, 503})


def headers(call: SourceCall) -> dict[str, str]:
    # Since June 2026 keys/tokens are rejected as query parameters: Authorization header only.
    result = {"Accept": "application/json"}
    if call.config.stackexchange_key:
        result["Authorization"] = f"Bearer {call.config.stackexchange_key}"
    return result


def next_utc_midnight(now: float) -> datetime:
    moment = datetime.fromtimestamp(now, UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)


def classify(response: HttpResponse, now: float) -> UpstreamError | None:
    """Stack Exchange reports every error as HTTP 400 with error_id/error_name (200 for JSONP)."""
    if response.body.lstrip()[:1] != b"{":
        # Not the API's wrapper (an HTML error page, an empty reply): a 200 fails later, in parsing.
        return None if response.status == 200 else error_for_status(response)
    data = response.json_object()
    if "error_id" not in data:
        return None if response.status == 200 else error_for_status(response)
    error_id = data.get("error_id")
    name = str(data.get("error_name", ""))
    message = str(data.get("error_message", ""))
    detail = f"{name} ({error_id}): {message}"
    if name == "throttle_violation":
        seconds = seconds_in_text(message)
        if seconds is not None:
            until = datetime.fromtimestamp(now + seconds, UTC)
            return QuotaExhausted(SOURCE, detail, until=until)
        return RateLimited(SOURCE, detail)  # "Violation of backoff parameter": no duration given
    if error_id in AUTH_ERROR_IDS:
        return ConfigurationError(SOURCE, "STACKEXCHANGE_KEY", detail)
    status = int(error_id) if error_id in RETRYABLE_ERROR_IDS else response.status
    return UpstreamHTTPError(SOURCE, status, message, message=f"HTTP {response.status} {detail}")


def note_wrapper(call: SourceCall, method: str, data: dict[str, Any]) -> None:
    """Honour `backoff` for this method and stop the source for the day when the quota is gone."""
    backoff = data.get("backoff")
    if isinstance(backoff, int | float) and backoff > 0:
        until = call.now() + float(backoff)
        call.gates.block(f"{SOURCE} {method}", until, f"backoff of {backoff}s on {method}")
    remaining = data.get("quota_remaining")
    if isinstance(remaining, int | float) and remaining <= 0:
        until = next_utc_midnight(call.now())
        call.remember_limit(QuotaExhausted(SOURCE, "daily quota used up (quota_remaining 0)", until=until))


def question_item(raw: dict[str, Any], answer: dict[str, Any] | None) -> ResearchItem:
    question = html_to_text(raw.get("body"), limit=260)
    summary = question
    if answer is not None:
        accepted = ", accepted" if answer.get("is_accepted") else ""
        answer_text = html_to_text(answer.get("body"), limit=320)
        summary = f"{question} Top answer ({answer.get('score', 0)} votes{accepted}): {answer_text}".strip()
    elif not summary:
        summary = f"{raw.get('answer_count', 0)} answers, {raw.get('view_count', 0):,} views"
    score = popularity_score(raw.get("score"), SCORE_SATURATION)
    if raw.get("is_answered"):
        score = 0.2 + 0.8 * score  # an answered question is worth more to a lesson than an open one
    return ResearchItem.create(
        source=SOURCE,
        title=raw.get("title"),
        url=raw.get("link"),
        summary=summary,
        score=score,
        published_at=raw.get("creation_date"),
        tags=raw.get("tags") or [],
    )


def best_answers(records: list[Any]) -> dict[int, dict[str, Any]]:
    """Per question id: the accepted answer, else the highest-voted one."""
    best: dict[int, dict[str, Any]] = {}
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("question_id"), int):
            continue
        current = best.get(record["question_id"])
        rank = (bool(record.get("is_accepted")), record.get("score") or 0)
        if current is None or rank > (bool(current.get("is_accepted")), current.get("score") or 0):
            best[record["question_id"]] = record
    return best


async def search(call: SourceCall, topic: str, limit: int) -> list[ResearchItem]:
    base = call.config.stackexchange_api_url
    site = call.config.stackexchange_site
    response = await call.get(
        f"{base}/search/advanced",
        params={"q": topic, "site": site, "sort": "relevance", "order": "desc", "pagesize": limit,
                "filter": "withbody"},
        headers=headers(call),
        classify=lambda r: classify(r, call.now()),
        gate_key=f"{SOURCE} {SEARCH_METHOD}",
    )
    data = response.json_object()
    note_wrapper(call, SEARCH_METHOD, data)
    questions = [q for q in require_list(SOURCE, data, "items") if isinstance(q, dict)][:limit]
    answers: dict[int, dict[str, Any]] = {}
    answered_ids = [str(q["question_id"]) for q in questions
                    if isinstance(q.get("question_id"), int) and q.get("answer_count")]
    if answered_ids and call.gates.blocked(SOURCE, call.now()) is None:
        try:
            answer_response = await call.get(
                f"{base}/questions/{';'.join(answered_ids)}/answers",
                params={"site": site, "sort": "votes", "order": "desc", "pagesize": 100,
                        "filter": "withbody"},
                headers=headers(call),
                classify=lambda r: classify(r, call.now()),
                gate_key=f"{SOURCE} {ANSWERS_METHOD}",
            )
            answer_data = answer_response.json_object()
            note_wrapper(call, ANSWERS_METHOD, answer_data)
            answers = best_answers(require_list(SOURCE, answer_data, "items"))
        except UpstreamError as exc:
            # The questions already answered: keep them without their top answers.
            call.remember_limit(exc)
    return collect_items(SOURCE, questions, lambda q: question_item(q, answers.get(q.get("question_id", -1))))
