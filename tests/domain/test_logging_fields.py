"""domain.logging_fields: field validation, rendering, and replay-safe logging on the real SDK + devhost."""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from devhost.testing import durable_host_factory as durable_host_factory  # the devhost's pytest fixture
from domain.logging_fields import (
    MAX_VALUE_CHARS,
    LogFieldError,
    ReplaySafeLogger,
    describe,
    log_fields,
    with_fields,
)

LOGGER_NAME = "tests.logging_fields.orchestrator"
logger = logging.getLogger(LOGGER_NAME)

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.activity_trigger(input_name="step")
def LoggingStep(step: int) -> int:
    return step * 10


@app.orchestration_trigger(context_name="context")
def LoggingOrchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, list[int]]:
    log = ReplaySafeLogger(context, logger, module_id=context.get_input()["module_id"])
    logger.info("plain line (written on every replay)")
    log.info("run started", stage="researching")
    results: list[int] = []
    for step in range(3):
        results.append((yield context.call_activity("LoggingStep", step)))
        log.info("step done", step=step, result=results[-1])
    fanned = yield context.task_all([context.call_activity("LoggingStep", n) for n in (7, 8)])
    log.warning("run finished", stage="completed", lessons=len(results) + len(fanned))
    return results + fanned


async def test_each_line_is_written_once_although_the_orchestrator_replays(
    durable_host_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    async with durable_host_factory(app) as host:
        instance_id = await host.start("LoggingOrchestrator", {"module_id": "m-1"})
        status = await host.wait_done(instance_id)
    assert status.runtime_status == "Completed", status.output_text
    records = [r for r in caplog.records if r.name == LOGGER_NAME]

    # The control line proves the orchestrator really replayed: one episode per awaited task + start.
    plain = [r for r in records if r.getMessage().startswith("plain line")]
    assert len(plain) >= 5  # the fan-in may take one or two episodes
    safe = [r for r in records if not r.getMessage().startswith("plain line")]
    assert [r.getMessage().split(" | ")[0] for r in safe] == [
        "run started",
        "step done",
        "step done",
        "step done",
        "run finished",
    ]
    assert [getattr(r, "step", None) for r in safe] == [None, 0, 1, 2, None]
    assert [getattr(r, "result", None) for r in safe[1:4]] == [0, 10, 20]
    assert all(getattr(r, "instance_id", None) == instance_id for r in safe)
    assert all(getattr(r, "module_id", None) == "m-1" for r in safe)
    assert {r.funcName for r in safe} == {"LoggingOrchestrator"}, "records point at the orchestrator's line"
    assert safe[-1].levelno == logging.WARNING
    assert safe[-1].getMessage() == (
        f"run finished | instance_id={instance_id} module_id=m-1 stage=completed lessons=5"
    )


class FakeContext:
    """Stands in for the SDK context in unit tests of the wrapper alone (the flag is all it reads)."""

    def __init__(self, replaying: bool) -> None:
        self.is_replaying = replaying
        self.instance_id = "abc"


def test_nothing_is_written_while_replaying_and_bad_fields_still_fail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    context = FakeContext(replaying=True)
    log = ReplaySafeLogger(context, logger)
    log.error("during replay")
    with pytest.raises(LogFieldError):
        log.info("bad", msg="x")
    context.is_replaying = False
    log.debug("live 100% %s", stage="x")
    log.log(logging.INFO, "via log()")
    assert [r.getMessage() for r in caplog.records] == [
        "live 100% %s | instance_id=abc stage=x",
        "via log() | instance_id=abc",
    ]
    assert {r.funcName for r in caplog.records} == {
        "test_nothing_is_written_while_replaying_and_bad_fields_still_fail"
    }


def test_log_fields_drops_none_and_shortens_long_values_to_one_line() -> None:
    fields = log_fields(module_id="m", error=None, attempt=2, ok=True, detail="a\nb  " + "x" * 1000)
    assert list(fields) == ["module_id", "attempt", "ok", "detail"]
    detail = fields["detail"]
    assert isinstance(detail, str)
    assert detail.startswith("a b x") and len(detail) == MAX_VALUE_CHARS and detail.endswith("…")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("msg", "LogRecord attribute"),
        ("name", "LogRecord attribute"),
        ("message", "LogRecord attribute"),
        ("ModuleId", "lower_snake_case"),
        ("groq_api_key", "credential"),
        ("webhook_secret", "credential"),
        ("database_dsn", "credential"),
        ("github_token", "credential"),
        ("deepseek_apikey", "credential"),
    ],
)
def test_unusable_field_names_are_refused(name: str, why: str) -> None:
    with pytest.raises(LogFieldError, match=why):
        log_fields(**{name: "v"})


def test_counts_of_ai_tokens_are_not_mistaken_for_credentials() -> None:
    assert log_fields(tokens_in=1913, tokens_out=407) == {"tokens_in": 1913, "tokens_out": 407}


def test_values_must_be_scalars() -> None:
    with pytest.raises(LogFieldError, match="must be str, int, float or bool"):
        log_fields(sources=["github"])  # type: ignore[arg-type]


def test_rendering_quotes_what_would_be_ambiguous() -> None:
    rendered = describe({"title": 'say "hi" = ok', "n": 3, "flag": False, "empty": "", "skip": None})
    assert rendered == 'title="say \\"hi\\" = ok" n=3 flag=false empty=""'
    assert with_fields("done", {}) == "done"
    assert with_fields("done", {"n": 1}) == "done | n=1"
