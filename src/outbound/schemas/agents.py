"""The API contract of what agents do: conversation actions, answers, notes, canned responses."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, ConfigDict, Field

from outbound.schemas.base import InputModel, OutputModel

__all__ = [
    "CannedResponseCreate",
    "CannedResponseOut",
    "CannedResponseUpdate",
    "CloseIn",
    "DeclineIn",
    "NoteIn",
    "NoteOut",
    "RenderedCanned",
    "ReplyIn",
    "ReplyOut",
    "SimulateIn",
    "SnoozeIn",
    "TransferIn",
]


class DeclineIn(InputModel):
    reason: str | None = Field(None, max_length=500)


class TransferIn(InputModel):
    """Give either ``user_id`` (assigned to that agent at once) or ``queue_id`` (waits there)."""

    user_id: str | None = None
    queue_id: str | None = None
    reason: str | None = Field(None, max_length=500)


class SnoozeIn(InputModel):
    until: AwareDatetime = Field(description="When the conversation comes back (≤ 30 days).")


class CloseIn(InputModel):
    wrap_up: bool = Field(
        True,
        description="Go through wrap-up when the queue holds capacity for one (false: close now).",
    )


class ReplyIn(InputModel):
    """An answer to the customer: free text, or a template filled from the conversation."""

    body: str | None = Field(None, max_length=1600)
    template_id: str | None = None
    parameters: dict[str, str | int | float | bool | None] | None = Field(
        None, description="Values for the template's placeholders, beyond the conversation's."
    )


class ReplyOut(OutputModel):
    message_id: str
    conversation_id: str
    status: str
    body: str | None
    encoding: str | None
    segments: int | None
    locale: str | None
    created_at: datetime


class NoteIn(InputModel):
    body: str = Field(min_length=1, max_length=10_000)


class NoteOut(OutputModel):
    id: str
    conversation_id: str
    user_id: str | None
    body: str
    created_at: datetime


SHORTCODE_PATTERN = "^/?[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
"""A shortcode as typed: ``/delay`` or ``delay`` (stored without the slash, in lower case)."""


class CannedResponseCreate(InputModel):
    shortcode: str = Field(pattern=SHORTCODE_PATTERN, examples=["delay"])
    body: str = Field(
        min_length=1,
        max_length=1600,
        examples=["Hello {CustomerName}, {AgentName} here: your parcel is on its way."],
    )
    title: str | None = Field(None, max_length=200)


class CannedResponseUpdate(InputModel):
    shortcode: str | None = Field(None, pattern=SHORTCODE_PATTERN)
    body: str | None = Field(None, min_length=1, max_length=1600)
    title: str | None = Field(None, max_length=200)


class CannedResponseOut(OutputModel):
    id: str
    shortcode: str
    title: str | None
    body: str
    created_at: datetime
    updated_at: datetime


class RenderedCanned(OutputModel):
    shortcode: str
    text: str


class SimulateIn(InputModel):
    """A made-up customer message; nothing is stored."""

    channel_id: str
    text: str = Field("", max_length=1600)
    from_: str | None = Field(None, alias="from", max_length=32, examples=["+33612345678"])
    message_id: str | None = Field(
        None, description="The outbound message the made-up reply answers."
    )

    model_config = ConfigDict(populate_by_name=True)
