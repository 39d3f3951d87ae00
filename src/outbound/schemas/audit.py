"""The audit log of administrative changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from outbound.schemas.base import OutputModel

__all__ = ["AuditEventOut"]


class AuditEventOut(OutputModel):
    id: str = Field(description="aud_ and 26 letters.")
    occurred_at: datetime
    action: str = Field(description="What was done, such as template.updated or api_key.revoked.")
    target_type: str
    target_id: str | None
    via: str = Field(
        description="api (an API key), console (a user of the console) or cli (the command line)."
    )
    actor_key_id: str | None
    actor_user_id: str | None
    actor_role: str | None
    changes: dict[str, Any] | None = Field(
        description='Each changed field: {"from": old, "to": new}; secrets only as "(changed)".'
    )
