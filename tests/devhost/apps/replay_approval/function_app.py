"""An approval workflow: waits for an external event, can be suspended, resumed or terminated meanwhile."""

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context", orchestration="Approval")
def approval(context: df.DurableOrchestrationContext):
    draft = yield context.call_activity("Draft", context.get_input())
    decision = yield context.wait_for_external_event("Approve")
    published = yield context.call_activity("Publish", {"draft": draft, "decision": decision})
    return published


@app.orchestration_trigger(context_name="context", orchestration="Countdown")
def countdown(context: df.DurableOrchestrationContext):
    remaining = context.get_input()
    yield context.call_activity("Draft", f"tick {remaining}")
    if remaining > 0:
        context.continue_as_new(remaining - 1)
        return None
    return "liftoff"


@app.activity_trigger(input_name="topic")
def Draft(topic: str) -> str:
    return f"draft about {topic}"


@app.activity_trigger(input_name="request")
def Publish(request: dict) -> str:
    return f"{request['draft']} ({request['decision']})"
