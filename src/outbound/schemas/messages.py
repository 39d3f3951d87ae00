"""API models of messages as they are tracked, with their status history."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from outbound.domain.channels import ChannelType, ProviderName
from outbound.schemas.base import OutputModel

__all__ = ["MessageEventOut", "MessageOut"]


class MessageEventOut(OutputModel):
    status: str
    occurred_at: datetime
    source: str
    error_code: str | None
    error_message: str | None


class MessageOut(OutputModel):
    id: str
    request_id: str | None = Field(description="None for replies the service sends itself.")
    configuration_id: str | None
    channel_id: str
    template_id: str | None
    template_version: int | None = Field(
        None, description="The version of the template the body was rendered from."
    )
    channel_type: ChannelType
    provider: ProviderName
    to: str | None
    to_raw: str
    from_: str | None = Field(serialization_alias="from")
    locale: str | None
    body: str | None
    encoding: str | None
    segments: int | None
    status: str
    reason: str | None
    provider_message_id: str | None
    template_parameters: dict[str, str] | None = Field(
        None, description="WhatsApp: the approved template's positional variables."
    )
    content_sid: str | None = Field(
        None, description="WhatsApp: the approved template sent (the language's Content SID)."
    )
    sent_via_channel_id: str | None = Field(
        None, description="The fallback channel the message went through, if it failed over."
    )
    error_code: str | None
    error_message: str | None
    attempts: int
    regarding_object_id: str | None
    entity_relationship_name: str | None
    created_at: datetime
    updated_at: datetime
    history: list[MessageEventOut] | None = None
