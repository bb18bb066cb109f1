"""Registers the orchestrations with the function app (v2 programming model)."""

import azure.durable_functions as df

from domain.pipeline import ORCHESTRATOR
from orchestrations.generate_module import generate_module_lessons

bp = df.Blueprint()
bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR)(generate_module_lessons)
