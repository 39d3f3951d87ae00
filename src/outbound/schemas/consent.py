"""API models of consent: a number's state per channel with its history, and an admin's record."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from outbound.domain.channels import ChannelType
from outbound.schemas.base import InputModel, OutputModel

__all__ = ["ConsentChange", "ConsentChannel", "ConsentOut", "ConsentRecordIn"]

ConsentState = Literal["given", "withdrawn"]


class ConsentChange(OutputModel):
    state: ConsentState
    source: str = Field(
        description="keyword (a customer's STOP or START), provider_error (the provider said "
        "the recipient unsubscribed) or admin (PUT /v1/consent)."
    )
    detail: str | None = Field(
        None, description="The keyword as received, the provider's error, or the admin's note."
    )
    actor: str | None = Field(None, description="For admin: user:<id> or key:<id>.")
    occurred_at: datetime


class ConsentChannel(OutputModel):
    channel_id: str
    channel_name: str
    channel_type: ChannelType
    state: ConsentState = Field(
        description="withdrawn when the number withdrew consent on this channel; given "
        "otherwise (no change recorded yet, or consent restored)."
    )
    changed_at: datetime | None
    last_inbound_at: datetime | None = Field(
        None, description="When the number last wrote to this channel."
    )
    history: list[ConsentChange] = Field(description="Every change, oldest first.")


class ConsentOut(OutputModel):
    number: str = Field(description="The number in E.164.")
    channels: list[ConsentChannel]


class ConsentRecordIn(InputModel):
    """An admin records consent given or withdrawn elsewhere (a call, a letter)."""

    number: str = Field(min_length=1, max_length=100)
    state: ConsentState
    channel_id: str | None = Field(
        None,
        min_length=1,
        max_length=36,
        description="The channel; when absent, every channel of the organisation.",
    )
    note: str | None = Field(None, max_length=200, description="Kept as the change's detail.")
