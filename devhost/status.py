"""Instance status as the management API reports it, and the errors of instance operations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class RuntimeStatus(StrEnum):
    """OrchestrationRuntimeStatus names (§8)."""

    RUNNING = "Running"
    COMPLETED = "Completed"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    FAILED = "Failed"
    CANCELED = "Canceled"
    TERMINATED = "Terminated"
    PENDING = "Pending"
    SUSPENDED = "Suspended"


# Statuses in which start_new with the same id is refused (NonRunningStates may be overridden).
ACTIVE_STATUSES = frozenset(
    {RuntimeStatus.RUNNING, RuntimeStatus.PENDING, RuntimeStatus.SUSPENDED, RuntimeStatus.CONTINUED_AS_NEW}
)
TERMINAL_STATUSES = frozenset(
    {RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.TERMINATED, RuntimeStatus.CANCELED}
)


@dataclass(frozen=True)
class InstanceStatus:
    instance_id: str
    name: str
    runtime_status: RuntimeStatus
    input_text: str | None
    output_text: str | None
    custom_status_text: str | None
    created_time: datetime
    last_updated_time: datetime
    execution_id: str
    parent_instance_id: str | None


class InstanceNotFound(LookupError):
    """No instance with that id (HTTP 404)."""


class InstanceAlreadyRunning(Exception):
    """start_new on an id whose instance is Running/Pending/Suspended (the host answers 500)."""


class InstanceGone(Exception):
    """The instance already completed, failed or was terminated (HTTP 410)."""


class InvalidInstanceState(Exception):
    """The operation does not apply in the current status, e.g. resume of a running instance (500)."""
