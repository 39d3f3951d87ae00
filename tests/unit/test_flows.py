"""Unit tests for outbound.domain.flows, which gathers the public names of the flow modules."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from outbound.domain import (
    conditions,
    durations,
    flow_definitions,
    flow_documents,
    flows,
    recipients,
    schedules,
    timezones,
)

MODULES = [conditions, durations, flow_definitions, flow_documents, recipients, schedules]


def defined_in(module: ModuleType) -> set[str]:
    return {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == module.__name__
    }


def test_all_lists_the_public_names() -> None:
    assert flows.__all__ == [
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
    for name in flows.__all__:
        assert hasattr(flows, name)


def test_each_name_is_the_one_its_module_defines() -> None:
    for name in flows.__all__:
        (home,) = (module for module in MODULES if name in module.__all__)
        assert getattr(flows, name) is getattr(home, name)


def test_flows_defines_nothing_of_its_own() -> None:
    assert defined_in(flows) == set()


@pytest.mark.parametrize("module", [*MODULES, timezones], ids=lambda m: m.__name__)
def test_every_public_class_and_function_is_in_all(module: ModuleType) -> None:
    assert defined_in(module) <= set(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name)
