"""Flow definitions: a checked flow document as frozen values, and its stored form.

A :class:`FlowDefinition` is what :func:`~outbound.domain.flow_documents.parse_flow_document`
builds: the flow's name, its outbound configuration, its :class:`Trigger` (automatic on an
event, instant on demand, or scheduled by cron or at a time), where its records come from, its
conditions and its recipient mapping. :meth:`FlowDefinition.to_dict` and
:meth:`FlowDefinition.from_dict` store it as JSON-safe data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from outbound.domain.conditions import Condition
from outbound.domain.timezones import as_utc

__all__ = ["DEFAULT_TIMEZONE", "FlowDefinition", "Trigger", "TriggerType"]

DEFAULT_TIMEZONE: Final = "UTC"
"""The zone a scheduled trigger's times are read in when it names none."""


class TriggerType(StrEnum):
    """What starts a flow's runs: an event, someone asking, or its schedule."""

    AUTOMATIC = "automatic"
    INSTANT = "instant"
    SCHEDULED = "scheduled"


@dataclass(frozen=True)
class Trigger:
    """When a flow runs. ``at`` is aware UTC; ``timezone``/``on_missed`` matter when scheduled."""

    type: str
    event: str | None = None
    delay_seconds: int | None = None
    cron: str | None = None
    at: datetime | None = None
    timezone: str = DEFAULT_TIMEZONE
    on_missed: str = "run_once"


@dataclass(frozen=True)
class FlowDefinition:
    """A checked flow document. ``recipient`` is the recipient mapping as written."""

    name: str
    description: str | None
    enabled: bool
    configuration: str
    trigger: Trigger
    source_records: str | None
    conditions: tuple[Condition, ...] = ()
    recipient: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form; :meth:`from_dict` reads it back without checking it again."""
        trigger = self.trigger
        return {
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "configuration": self.configuration,
            "trigger": {
                "type": trigger.type,
                "event": trigger.event,
                "delay_seconds": trigger.delay_seconds,
                "cron": trigger.cron,
                "at": None if trigger.at is None else trigger.at.isoformat(),
                "timezone": trigger.timezone,
                "on_missed": trigger.on_missed,
            },
            "source_records": self.source_records,
            "conditions": [
                {"field": c.field, "op": c.op, "value": _plain(c.value)} for c in self.conditions
            ],
            "recipient": _plain(self.recipient),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlowDefinition:
        """The definition :meth:`to_dict` produced."""
        raw = data["trigger"]
        at = raw.get("at")
        trigger = Trigger(
            type=raw["type"],
            event=raw.get("event"),
            delay_seconds=raw.get("delay_seconds"),
            cron=raw.get("cron"),
            at=None if at is None else as_utc(datetime.fromisoformat(at)),
            timezone=raw.get("timezone") or DEFAULT_TIMEZONE,
            on_missed=raw.get("on_missed") or "run_once",
        )
        return cls(
            name=data["name"],
            description=data.get("description"),
            enabled=data.get("enabled", True),
            configuration=data["configuration"],
            trigger=trigger,
            source_records=data.get("source_records"),
            conditions=tuple(
                Condition(field=c["field"], op=c.get("op", "eq"), value=_plain(c.get("value")))
                for c in data.get("conditions") or ()
            ),
            recipient=_plain(data.get("recipient") or {}),
        )


def _plain(value: Any) -> Any:
    """A deep copy made of dicts, lists and scalars."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
