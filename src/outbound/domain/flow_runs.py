"""Flow runs: one execution of a flow, from pending to a final status."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["FlowRunStatus"]


class FlowRunStatus(StrEnum):
    """Where a run stands: waiting (pending), sending batches (running), or done."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
