"""API models of messages as they are tracked, with their status history."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from outbound.domain.channels import ChannelType, ProviderName
from outbound.schemas.base import InputModel, OutputModel
from outbound.texts import N_

__all__ = ["CancelIn", "CancelOut", "MessageEventOut", "MessageOut"]


class MessageEventOut(OutputModel):
    status: str
    occurred_at: datetime
    source: str
    error_code: str | None
    error_message: str | None
    actor: str | None = Field(
        None, description="Who made the change, when a person or a key did: user:<id> or key:<id>."
    )


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


class CancelIn(InputModel):
    """What ``POST /v1/outbound/cancel`` cancels the queued messages of: exactly one of a send
    request, a flow run or an outbound configuration."""

    request_id: str | None = Field(None, min_length=1, max_length=36)
    flow_run_id: str | None = Field(None, min_length=1, max_length=36)
    configuration_id: str | None = Field(None, min_length=1, max_length=40)

    @model_validator(mode="after")
    def _exactly_one(self) -> CancelIn:
        given = [
            name
            for name in ("request_id", "flow_run_id", "configuration_id")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            message = N_("give exactly one of request_id, flow_run_id, configuration_id")
            if given:
                message = N_(
                    "give exactly one of request_id, flow_run_id, configuration_id (got %(given)s)",
                    given=", ".join(given),
                )
            raise ValueError(message)
        return self


class CancelOut(OutputModel):
    canceled: int = Field(description="How many queued messages were canceled.")
