"""Flows: what a flow is, when it fires, which records it keeps, what it sends.

The rules live in one module each; this module gathers their public names:

- :mod:`~outbound.domain.flow_documents`: reading and checking a YAML or JSON flow document
  (:func:`parse_flow_document`, :class:`FlowDefinitionError`, :class:`FieldError`);
- :mod:`~outbound.domain.flow_definitions`: the checked definition (:class:`FlowDefinition`,
  :class:`Trigger`) and its stored form;
- :mod:`~outbound.domain.conditions`: whether a record meets a flow's conditions
  (:class:`Condition`, :func:`evaluate_conditions`, :func:`resolve_path`, :data:`MISSING`,
  :func:`matches_event`);
- :mod:`~outbound.domain.recipients`: a record as a send request's contact item
  (:func:`render_recipient`, :class:`MappingError`);
- :mod:`~outbound.domain.schedules`: when a scheduled flow is due (:func:`next_fire_after`,
  :func:`due_fire_times`);
- :mod:`~outbound.domain.durations`: durations such as ``24h`` (:func:`parse_duration`).
"""

from __future__ import annotations

from outbound.domain.conditions import (
    MISSING,
    Condition,
    evaluate_conditions,
    matches_event,
    resolve_path,
)
from outbound.domain.durations import parse_duration
from outbound.domain.flow_definitions import FlowDefinition, Trigger
from outbound.domain.flow_documents import FieldError, FlowDefinitionError, parse_flow_document
from outbound.domain.recipients import MappingError, render_recipient
from outbound.domain.schedules import due_fire_times, next_fire_after

__all__ = [
    "MISSING",
    "Condition",
    "FieldError",
    "FlowDefinition",
    "FlowDefinitionError",
    "MappingError",
    "Trigger",
    "due_fire_times",
    "evaluate_conditions",
    "matches_event",
    "next_fire_after",
    "parse_duration",
    "parse_flow_document",
    "render_recipient",
    "resolve_path",
]
