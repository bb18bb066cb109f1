"""replay_pipeline after an edit: the planning activity was renamed from Plan to Outline."""

from datetime import timedelta

import azure.durable_functions as df

app = df.DFApp()

SOURCES = ("docs", "forum", "video")
_plan_calls: dict[str, int] = {}


@app.orchestration_trigger(context_name="context", orchestration="Pipeline")
def pipeline(context: df.DurableOrchestrationContext):
    topic = context.get_input()["topic"]
    found = yield context.task_all(
        [context.call_activity("Research", {"topic": topic, "source": s}) for s in SOURCES]
    )
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)
    plan = yield context.call_activity_with_retry("Outline", retry, {"topic": topic, "found": found})
    context.set_custom_status({"stage": "writing", "parts": len(plan)})
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=5))
    parts = yield context.task_all([context.call_sub_orchestrator("WritePart", title) for title in plan])
    return {"topic": topic, "parts": parts}


@app.orchestration_trigger(context_name="context", orchestration="WritePart")
def write_part(context: df.DurableOrchestrationContext):
    title = context.get_input()
    text = yield context.call_activity("Write", title)
    return {"title": title, "words": len(text.split())}


@app.activity_trigger(input_name="request")
def Research(request: dict) -> str:
    return f"{request['source']} notes on {request['topic']}"


@app.activity_trigger(input_name="request")
def Outline(request: dict) -> list:
    # Fails on the first call per topic so the recorded history contains a retry timer.
    calls = _plan_calls[request["topic"]] = _plan_calls.get(request["topic"], 0) + 1
    if calls == 1:
        raise RuntimeError("planner warming up")
    return [f"{request['topic']}: part {n}" for n in range(1, len(request["found"]))]


@app.activity_trigger(input_name="title")
def Write(title: str) -> str:
    return f"A short text about {title}."
