"""API models of flows and flow runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from outbound.domain.conditions import CONDITION_OPS
from outbound.domain.flow_runs import FlowRunStatus
from outbound.schemas.base import InputModel, OutputModel, Said

__all__ = ["FlowOut", "FlowRunError", "FlowRunIn", "FlowRunOut", "RunCondition"]


class FlowOut(OutputModel):
    id: str
    name: str
    description: str | None
    trigger_type: str
    event_type: str | None
    configuration_id: str
    enabled: bool
    version: int
    next_fire_at: datetime | None
    last_fired_at: datetime | None
    definition: dict[str, Any]
    source: str = Field(description="The document as it was applied (YAML or JSON).")
    created_at: datetime
    updated_at: datetime


class RunCondition(InputModel):
    # Kept as written, as the conditions of a flow document are.
    model_config = ConfigDict(str_strip_whitespace=False)

    field: str = Field(min_length=1, max_length=200)
    op: str = Field("eq", pattern="^(" + "|".join(CONDITION_OPS) + ")$")
    value: Any = None


class FlowRunIn(InputModel):
    """Run an instant (or scheduled) flow now; extra conditions narrow its audience."""

    model_config = ConfigDict(str_strip_whitespace=False)

    conditions: list[RunCondition] = Field(default_factory=list, max_length=50)
    params: dict[str, Any] = Field(
        default_factory=dict, description="Values the flow reads as {params.NAME}."
    )


class FlowRunError(OutputModel):
    at: str | None = None
    field: str | None = None
    message: Said


class FlowRunOut(OutputModel):
    id: str
    flow_id: str
    trigger: str
    source: str
    status: FlowRunStatus
    wait_reason: str | None
    due_at: datetime
    event_id: str | None = Field(description="The event that started the run (automatic flows).")
    scheduled_for: str | None
    total: int | None = Field(description="Records in the source when the run started.")
    scanned: int = Field(description="Records read so far.")
    matched: int = Field(description="Records that met the conditions (recipients).")
    queued: int
    skipped: int
    rejected: int
    batches: int = Field(description="Send requests made (at most 100 contacts each).")
    error_count: int
    errors: list[FlowRunError] = Field(description="The first errors (at most 100).")
    progress: float | None = Field(description="scanned / total, from 0 to 1.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
