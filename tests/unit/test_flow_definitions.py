"""Unit tests for outbound.domain.flow_definitions: checked definitions and their stored form."""

from __future__ import annotations

import json
import textwrap

import pytest

from outbound.domain.flow_definitions import FlowDefinition
from outbound.domain.flow_documents import parse_flow_document


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


HEAD = """\
name: n
configuration: c
"""

ROUND_TRIP = [
    doc("""
    name: a
    description: d
    enabled: false
    configuration: c
    trigger: {type: automatic, event: "case.*", delay: 2h}
    conditions:
      - {field: case.status, op: in, value: [open, pending]}
      - {field: case.created_on, op: since, value: 2026-01-01}
    recipient:
      contextitems: {CaseName: "{case.title}", Count: 3}
      templateparameters: {1: "{contact.name}"}
    """),
    HEAD + "trigger: {type: instant}\nsource: {records: csv}\n",
    HEAD + "trigger: {type: scheduled, cron: '0 9 * * 1-5', timezone: Europe/Paris}\n",
    HEAD + "trigger: {type: scheduled, at: '2026-12-01T09:00:00', on_missed: run_all}\n",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_to_dict_from_dict_round_trip(text: str) -> None:
    definition = parse_flow_document(text)
    stored = json.loads(json.dumps(definition.to_dict()))
    assert stored == definition.to_dict()
    assert FlowDefinition.from_dict(stored) == definition


def test_to_dict_shape() -> None:
    definition = parse_flow_document(ROUND_TRIP[3])
    assert definition.to_dict() == {
        "name": "n",
        "description": None,
        "enabled": True,
        "configuration": "c",
        "trigger": {
            "type": "scheduled",
            "event": None,
            "delay_seconds": None,
            "cron": None,
            "at": "2026-12-01T09:00:00+00:00",
            "timezone": "UTC",
            "on_missed": "run_all",
        },
        "source_records": "contacts",
        "conditions": [],
        "recipient": {},
    }


def test_to_dict_is_a_copy() -> None:
    definition = parse_flow_document(ROUND_TRIP[0])
    stored = definition.to_dict()
    stored["recipient"]["contextitems"]["CaseName"] = "changed"
    stored["conditions"][0]["value"].append("closed")
    assert definition.recipient["contextitems"]["CaseName"] == "{case.title}"
    assert definition.conditions[0].value == ["open", "pending"]


def test_definitions_are_frozen() -> None:
    definition = parse_flow_document(ROUND_TRIP[1])
    with pytest.raises(AttributeError):
        definition.name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        definition.trigger.type = "automatic"  # type: ignore[misc]
