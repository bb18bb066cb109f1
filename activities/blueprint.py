"""Registers the activities; each is a thin async function over clients/ (payloads: ids and short records)."""

import azure.durable_functions as df

from activities.lessons import generate_lesson, plan_lessons
from activities.notify import notify_completion
from activities.research import research_source
from activities.run import begin_run, complete_run, fail_run
from domain.pipeline import Activity

bp = df.Blueprint()

# The Functions host dispatches activities by function name: each Python name is its activity name.
for name, function in (
    (Activity.BEGIN_RUN, begin_run),
    (Activity.RESEARCH_SOURCE, research_source),
    (Activity.PLAN_LESSONS, plan_lessons),
    (Activity.GENERATE_LESSON, generate_lesson),
    (Activity.COMPLETE_RUN, complete_run),
    (Activity.FAIL_RUN, fail_run),
    (Activity.NOTIFY_COMPLETION, notify_completion),
):
    assert function.__name__ == name, f"{function.__name__} must be named {name}"
    bp.activity_trigger(input_name="payload", activity=name)(function)
