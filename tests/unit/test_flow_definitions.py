from __future__ import annotations

import inspect
import json
import textwrap
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from outbound.domain import flows
from outbound.domain.flows import (
    MISSING,
    Condition,
    FieldError,
    FlowDefinition,
    FlowDefinitionError,
    MappingError,
    Trigger,
    due_fire_times,
    evaluate_conditions,
    matches_event,
    next_fire_after,
    parse_duration,
    parse_flow_document,
    render_recipient,
    resolve_path,
)
from outbound.errors import InvalidRequestError

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def errors_of(text: str) -> list[FieldError]:
    with pytest.raises(FlowDefinitionError) as caught:
        parse_flow_document(doc(text))
    return caught.value.errors


def only_error(text: str) -> FieldError:
    errors = errors_of(text)
    assert len(errors) == 1, errors
    return errors[0]


HEAD = """\
name: n
configuration: c
"""


# --- the module --------------------------------------------------------------------------


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


def test_every_public_class_and_function_is_in_all() -> None:
    defined = {
        name
        for name, obj in vars(flows).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == flows.__name__
    }
    assert defined <= set(flows.__all__)


# --- valid documents ---------------------------------------------------------------------


def test_automatic_flow_in_yaml() -> None:
    definition = parse_flow_document(
        doc("""
        name: case-created
        description: Tell the customer their case number
        enabled: false
        configuration: "Case updates"
        trigger:
          type: automatic
          event: "case.*"
          delay: 1d12h
        conditions:
          - field: case.status
            value: resolved
          - {field: contact.country, op: in, value: [FR, BE]}
          - {field: contact.mobile_phone, op: exists}
        recipient:
          tocontactid: "{contact.mobile_phone}"
          contextitems:
            CaseName: "{case.title}"
        """)
    )
    assert definition.name == "case-created"
    assert definition.description == "Tell the customer their case number"
    assert definition.enabled is False
    assert definition.configuration == "Case updates"
    assert definition.trigger == Trigger(
        type="automatic",
        event="case.*",
        delay_seconds=36 * 3600,
        cron=None,
        at=None,
        timezone="UTC",
        on_missed="run_once",
    )
    assert definition.source_records is None
    assert definition.conditions == (
        Condition("case.status", "eq", "resolved"),
        Condition("contact.country", "in", ["FR", "BE"]),
        Condition("contact.mobile_phone", "exists", None),
    )
    assert definition.recipient == {
        "tocontactid": "{contact.mobile_phone}",
        "contextitems": {"CaseName": "{case.title}"},
    }


def test_automatic_flow_defaults() -> None:
    definition = parse_flow_document(HEAD + "trigger: {type: automatic, event: case.created}\n")
    assert definition.enabled is True
    assert definition.description is None
    assert definition.trigger.delay_seconds is None
    assert definition.conditions == ()
    assert definition.recipient == {}


def test_instant_flow_in_json_with_tabs() -> None:
    text = '{\n\t"name": "bulk\\tsend",\n\t"configuration": 42,\n\t"trigger": {"type": "instant"},'
    text += '\n\t"source": {"records": "csv"}\n}'
    definition = parse_flow_document(text)
    assert definition.name == "bulk\tsend"
    assert definition.configuration == "42"
    assert definition.trigger.type == "instant"
    assert definition.source_records == "csv"


def test_json_with_escaped_quotes_and_tabs() -> None:
    text = '{"name": "say \\"hi\\" \\\\",\t"configuration": "c",\t"trigger": {"type": "instant"}}'
    assert parse_flow_document(text).name == 'say "hi" \\'


def test_yaml_anchors_and_merge_keys() -> None:
    definition = parse_flow_document(
        HEAD
        + doc("""
        trigger: {type: instant}
        conditions:
          - &resolved {field: case.status, value: resolved}
          - *resolved
          - <<: *resolved
            op: ne
        """)
    )
    assert definition.conditions == (
        Condition("case.status", "eq", "resolved"),
        Condition("case.status", "eq", "resolved"),
        Condition("case.status", "ne", "resolved"),
    )


def test_nested_aliases_are_not_expanded() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    text = HEAD + "trigger: {type: instant}\nrecipient:\n  contextitems:\n"
    text += "".join(f"    {level}\n" for level in levels)
    errors = errors_of(text)
    assert len(errors) == 9
    assert all(e.field.startswith("recipient.contextitems.a") for e in errors)


def test_merged_fields_are_placed_on_the_merging_item() -> None:
    errors = errors_of(
        HEAD
        + doc("""
        trigger: {type: instant}
        conditions:
          - &bad {field: case.status, op: like, value: x}
          - <<: *bad
            value: y
        """)
    )
    assert [(e.field, e.line) for e in errors] == [("conditions[0].op", 5), ("conditions[1].op", 6)]
    assert errors[1].message.startswith("must be one of")


def test_instant_flow_defaults_to_contacts() -> None:
    definition = parse_flow_document(HEAD + "trigger: {type: instant}\n")
    assert definition.source_records == "contacts"


def test_scheduled_cron_flow() -> None:
    definition = parse_flow_document(
        doc("""
        name: weekday-digest
        configuration: c
        trigger:
          type: scheduled
          cron: "0  9 * * MON-FRI"
          timezone: Europe/Paris
          on_missed: skip
        source:
          records: cases
        """)
    )
    trigger = definition.trigger
    assert (trigger.cron, trigger.at, trigger.timezone, trigger.on_missed) == (
        "0 9 * * MON-FRI",
        None,
        "Europe/Paris",
        "skip",
    )
    assert definition.source_records == "cases"


def test_scheduled_cron_defaults() -> None:
    definition = parse_flow_document(HEAD + 'trigger: {type: scheduled, cron: "*/5 * * * *"}\n')
    assert definition.trigger.timezone == "UTC"
    assert definition.trigger.on_missed == "run_once"
    assert definition.source_records == "contacts"


@pytest.mark.parametrize(
    ("at", "timezone", "expected"),
    [
        ('"2026-12-01T09:00:00"', "Europe/Paris", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ('"2026-07-01T09:00:00"', "Europe/Paris", datetime(2026, 7, 1, 7, tzinfo=UTC)),
        ("2026-12-01T09:00:00", "Europe/Paris", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ('"2026-12-01T09:00:00+02:00"', "Europe/Paris", datetime(2026, 12, 1, 7, tzinfo=UTC)),
        ('"2026-12-01T09:00:00Z"', "UTC", datetime(2026, 12, 1, 9, tzinfo=UTC)),
        ("2026-12-01 09:00:00-05:00", "UTC", datetime(2026, 12, 1, 14, tzinfo=UTC)),
        # 02:30 does not exist in Paris that night: the clocks jump from 02:00 to 03:00.
        ('"2026-03-29T02:30:00"', "Europe/Paris", datetime(2026, 3, 29, 1, tzinfo=UTC)),
    ],
)
def test_scheduled_at_flow(at: str, timezone: str, expected: datetime) -> None:
    definition = parse_flow_document(
        HEAD + f"trigger:\n  type: scheduled\n  at: {at}\n  timezone: {timezone}\n"
    )
    assert definition.trigger.at == expected
    assert definition.trigger.at.tzinfo is UTC
    assert definition.trigger.cron is None


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("24h", 86400),
        ("PT24H", 86400),
        ("P1D", 86400),
        ("366d", 366 * 86400),
    ],
)
def test_automatic_delay_forms(delay: str, seconds: int) -> None:
    definition = parse_flow_document(
        HEAD + f"trigger: {{type: automatic, event: e, delay: {delay}}}\n"
    )
    assert definition.trigger.delay_seconds == seconds


def test_null_optional_fields_are_absent() -> None:
    definition = parse_flow_document(
        doc("""
        name: n
        description:
        enabled:
        configuration: c
        trigger: {type: scheduled, cron: "0 9 * * *", timezone: null}
        source:
        conditions:
        recipient:
        """)
    )
    assert definition.description is None
    assert definition.enabled is True
    assert definition.trigger.timezone == "UTC"
    assert definition.source_records == "contacts"
    assert definition.conditions == ()
    assert definition.recipient == {}


def test_condition_values_are_normalised() -> None:
    definition = parse_flow_document(
        HEAD
        + doc("""
        trigger: {type: instant}
        conditions:
          - {field: case.created_on, op: since, value: 2026-01-31}
          - {field: case.created_on, op: before, value: 7d}
          - {field: case.opened, op: gt, value: 2026-01-31T10:00:00+01:00}
          - {field: case.priority, op: not_in, value: [1, 2026-01-31]}
          - {field: contact.phone, op: starts_with, value: "+33"}
          - {field: case.vip, value: true}
        """)
    )
    assert [c.value for c in definition.conditions] == [
        "2026-01-31",
        "7d",
        "2026-01-31T10:00:00+01:00",
        [1, "2026-01-31"],
        "+33",
        True,
    ]


def test_recipient_is_kept_as_written() -> None:
    definition = parse_flow_document(
        HEAD
        + doc("""
        trigger: {type: instant}
        recipient:
          tocontactid: 33612345678
          optin: true
          locale: "{contact.preferred_language}"
          timezone: Europe/Paris
          contextitems:
            Score: 3
            Ratio: 0.5
            Vip: false
            CaseName: null
          sendastemplate: true
          templateparameters:
            1: "{contact.name}"
            "2": 7
        """)
    )
    assert definition.recipient == {
        "tocontactid": 33612345678,
        "optin": True,
        "locale": "{contact.preferred_language}",
        "timezone": "Europe/Paris",
        "contextitems": {"Score": 3, "Ratio": 0.5, "Vip": False, "CaseName": None},
        "sendastemplate": True,
        "templateparameters": {"1": "{contact.name}", "2": 7},
    }


def test_json_document_parses() -> None:
    payload = {
        "name": "json-flow",
        "configuration": "c",
        "trigger": {"type": "scheduled", "cron": "0 9 * * *", "timezone": "Europe/Paris"},
        "conditions": [{"field": "contact.country", "op": "eq", "value": "FR"}],
    }
    definition = parse_flow_document(json.dumps(payload, indent=2))
    assert definition.trigger.cron == "0 9 * * *"
    assert definition.conditions == (Condition("contact.country", "eq", "FR"),)


# --- faults ------------------------------------------------------------------------------


def test_bad_cron_names_field_and_line() -> None:
    error = only_error("""
        name: n
        configuration: c
        trigger:
          type: scheduled
          cron: "99 9 * * *"
        """)
    assert error == FieldError("trigger.cron", 5, "not a valid cron expression")


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ('"0 0 9 * * MON"', "must have 5 fields"),
        ('"0 9 * * MON-FRI 2026"', "must have 5 fields"),
        ("'@daily'", "must have 5 fields"),
        ("nonsense", "must have 5 fields"),
        ('"a b c d e"', "not a valid cron expression"),
        ('"0 25 * * *"', "not a valid cron expression"),
        ('"0 0 31 2 *"', "never matches a date"),
        ("5", "must be a cron expression"),
    ],
)
def test_bad_cron_forms(cron: str, message: str) -> None:
    error = only_error(HEAD + f"trigger:\n  type: scheduled\n  cron: {cron}\n")
    assert error.field == "trigger.cron"
    assert error.line == 5
    assert message in error.message


def test_unknown_op_in_second_condition() -> None:
    error = only_error("""
        name: n
        configuration: c
        trigger: {type: instant}
        conditions:
          - field: case.status
            value: resolved
          - field: case.priority
            op: bigger
            value: 2
        """)
    assert error.field == "conditions[1].op"
    assert error.line == 8
    assert error.message.startswith("must be one of eq, ne, in, not_in, exists, missing, gt")


def test_missing_configuration_points_at_the_document() -> None:
    error = only_error("name: n\ntrigger: {type: instant}\n")
    assert error == FieldError("configuration", 1, "is required")


def test_missing_nested_field_points_at_its_parent() -> None:
    error = only_error(HEAD + "trigger:\n  event: case.created\n")
    assert error == FieldError("trigger.type", 3, "is required")


def test_missing_condition_value_points_at_the_item() -> None:
    error = only_error(HEAD + "trigger: {type: instant}\nconditions:\n  - field: a\n    op: eq\n")
    assert error == FieldError("conditions[0].value", 5, "is required")


def test_bad_trigger_type_message() -> None:
    error = only_error(HEAD + "trigger:\n  type: manual\n")
    assert error == FieldError("trigger.type", 4, "must be one of automatic, instant, scheduled")


def test_yaml_syntax_error_names_its_line() -> None:
    error = only_error("""
        name: n
        configuration: c
        trigger:
          type: "instant
        """)
    assert (error.field, error.line) == ("document", 5)
    assert error.message == (
        "not valid YAML: found unexpected end of stream (while scanning a quoted scalar on line 4)"
    )


def test_yaml_indentation_error_line() -> None:
    error = only_error("name: n\nconfiguration: c\n  trigger: x\n")
    assert (error.field, error.line) == ("document", 3)


def test_json_syntax_error() -> None:
    error = only_error('{"name": "n",\n "configuration": "c",,\n}')
    assert (error.field, error.line) == ("document", 2)


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_document(text: str) -> None:
    assert only_error(text) == FieldError("document", 1, "the document is empty")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_document_that_is_not_a_mapping(text: str) -> None:
    error = only_error(text)
    assert (error.field, error.line) == ("document", 1)
    assert error.message.startswith("must be a mapping")


def test_several_documents_in_one_stream() -> None:
    error = only_error("name: a\n---\nname: b\n")
    assert (error.field, error.line) == ("document", 2)


def test_unsafe_tags_are_refused() -> None:
    error = only_error("name: !!python/object:os.system x\n")
    assert (error.field, error.line) == ("document", 1)


def test_all_faults_are_collected_in_line_order() -> None:
    with pytest.raises(FlowDefinitionError) as caught:
        parse_flow_document(
            doc("""
            name: ""
            trigger:
              type: scheduled
              cron: "0 9 * *"
              timezone: Mars/Olympus
              colour: blue
            conditions:
              - {field: a, op: eq, value: 1}
              - {field: b, op: bigger, value: 2}
            recipient:
              tocontactid: "{contact.phone"
            """)
        )
    error = caught.value
    assert [(e.field, e.line) for e in error.errors] == [
        ("name", 1),
        ("configuration", 1),
        ("trigger.cron", 4),
        ("trigger.timezone", 5),
        ("trigger.colour", 6),
        ("conditions[1].op", 9),
        ("recipient.tocontactid", 11),
    ]
    assert isinstance(error, InvalidRequestError)
    assert error.status_code == 422
    assert error.code == "invalid_flow"
    assert error.field == "name"
    assert str(error) == "name (line 1): must not be empty (and 6 more)"
    assert error.message == str(error)
    assert error.details == {
        "errors": [{"field": e.field, "line": e.line, "message": e.message} for e in error.errors]
    }


def test_flow_definition_error_message() -> None:
    error = FlowDefinitionError([FieldError("trigger.cron", 5, "not a valid cron expression")])
    assert str(error) == "trigger.cron (line 5): not a valid cron expression"
    assert error.field == "trigger.cron"
    unplaced = FlowDefinitionError([FieldError("configuration", None, "not found")])
    assert str(unplaced) == "configuration: not found"
    with pytest.raises(ValueError):
        FlowDefinitionError([])


def test_duplicate_keys_are_faults() -> None:
    error = only_error(HEAD + "trigger: {type: instant}\nname: again\n")
    assert error == FieldError("name", 4, "is given twice (first on line 1)")


@pytest.mark.parametrize(
    ("body", "field", "line", "message"),
    [
        # top level
        ("colour: blue\n", "colour", 4, "unknown field; expected name, description"),
        ("name: n\n", "name", 4, "is given twice"),
        ("description: {a: b}\n", "description", 4, "must be text"),
        ("description: " + "x" * 1001 + "\n", "description", 4, "at most 1000 characters"),
        ("enabled: maybe\n", "enabled", 4, "must be true or false"),
        # source
        ("source: {records: leads}\n", "source.records", 4, "must be one of contacts, cases, csv"),
        ("source: {kind: x}\n", "source.kind", 4, "unknown field; expected records"),
        ("source: contacts\n", "source", 4, "must be a mapping"),
        # conditions
        ("conditions: {field: a}\n", "conditions", 4, "must be a list of conditions"),
        ("conditions:\n  - a\n", "conditions[0]", 5, "must be a mapping"),
        ("conditions:\n  - {op: eq, value: 1}\n", "conditions[0].field", 5, "is required"),
        ("conditions:\n  - {field: a b, value: 1}\n", "conditions[0].field", 5, "dotted path"),
        ("conditions:\n  - {field: a, op: exists, valu: 1}\n", "conditions[0].valu", 5,
         "unknown field"),
        ("conditions:\n  - {field: a, op: exists, value: 1}\n", "conditions[0].value", 5,
         "is not used with exists"),
        ("conditions:\n  - {field: a, op: in, value: x}\n", "conditions[0].value", 5,
         "must be a list of values for in"),
        ("conditions:\n  - {field: a, op: in, value: [[1]]}\n", "conditions[0].value", 5,
         "must be a list of values"),
        ("conditions:\n  - {field: a, op: since, value: lately}\n", "conditions[0].value", 5,
         "must be a date"),
        ("conditions:\n  - {field: a, op: gt, value: true}\n", "conditions[0].value", 5,
         "must be a number, a date or text"),
        ("conditions:\n  - {field: a, op: starts_with, value: [1]}\n", "conditions[0].value", 5,
         "must be text"),
        ("conditions:\n  - {field: a, value: {b: c}}\n", "conditions[0].value", 5,
         "must be text, a number"),
        ("conditions:\n  - {field: a, value: .nan}\n", "conditions[0].value", 5,
         "must be text, a number"),
        # recipient
        ("recipient: [a]\n", "recipient", 4, "must be a mapping"),
        ("recipient: {phone: x}\n", "recipient.phone", 4, "unknown field; expected tocontactid"),
        ('recipient: {tocontactid: "{contact.phone"}\n', "recipient.tocontactid", 4,
         "unclosed '{'"),
        ('recipient: {locale: "}{x}"}\n', "recipient.locale", 4, "unmatched '}'"),
        ('recipient: {timezone: "{contact tz}"}\n', "recipient.timezone", 4,
         "is not a field path"),
        ("recipient: {optin: 3}\n", "recipient.optin", 4, "must be an expression or true/false"),
        ("recipient: {tocontactid: true}\n", "recipient.tocontactid", 4, "must be an expression"),
        ("recipient: {sendastemplate: sometimes}\n", "recipient.sendastemplate", 4,
         "must be true or false"),
        ("recipient: {contextitems: [a]}\n", "recipient.contextitems", 4, "must be a mapping"),
        ("recipient:\n  contextitems:\n    A: [1]\n", "recipient.contextitems.A", 6,
         "must be an expression, text, a number or true/false"),
        ("recipient:\n  contextitems:\n    A: 2026-01-01\n", "recipient.contextitems.A", 6,
         "must be an expression"),
        ("recipient:\n  contextitems:\n    1: x\n", "recipient.contextitems.1", 6,
         "names must be text"),
        ("recipient:\n  contextitems:\n    A: '{x'\n", "recipient.contextitems.A", 6,
         "unclosed"),
        ("recipient:\n  templateparameters:\n    '1': true\n", "recipient.templateparameters.1",
         6, "must be an expression, text or a number"),
        ("recipient:\n  templateparameters:\n    '1':\n", "recipient.templateparameters.1",
         6, "must be an expression, text or a number"),
    ],
)  # fmt: skip
def test_document_faults(body: str, field: str, line: int, message: str) -> None:
    error = only_error(HEAD + "trigger: {type: instant}\n" + body)
    assert (error.field, error.line) == (field, line)
    assert message in error.message


@pytest.mark.parametrize(
    ("trigger", "field", "message"),
    [
        ("trigger: instant", "trigger", "must be a mapping"),
        ("trigger: {type: automatic}", "trigger.event", "is required"),
        ("trigger: {type: automatic, event: 5}", "trigger.event", "must be text"),
        ("trigger: {type: automatic, event: case created}", "trigger.event", "event type"),
        ("trigger: {type: automatic, event: e, delay: 0s}", "trigger.delay", "longer than 0"),
        ("trigger: {type: automatic, event: e, delay: 367d}", "trigger.delay", "366 days"),
        ("trigger: {type: automatic, event: e, delay: soon}", "trigger.delay", "not a duration"),
        ("trigger: {type: automatic, event: e, delay: 90}", "trigger.delay", "must be a duration"),
        ("trigger: {type: automatic, event: e, cron: '* * * * *'}", "trigger.cron",
         "only scheduled triggers take cron"),
        ("trigger: {type: automatic, event: e, at: '2026-01-01T00:00:00'}", "trigger.at",
         "only scheduled triggers take at"),
        ("trigger: {type: automatic, event: e, on_missed: skip}", "trigger.on_missed",
         "only scheduled triggers take on_missed"),
        ("trigger: {type: instant, timezone: UTC}", "trigger.timezone",
         "only scheduled triggers take timezone"),
        ("trigger: {type: instant, event: e}", "trigger.event",
         "only automatic triggers take event"),
        ("trigger: {type: scheduled, cron: '* * * * *', delay: 1h}", "trigger.delay",
         "only automatic triggers take delay"),
        ("trigger: {type: scheduled}", "trigger", "needs cron (repeating) or at (once)"),
        ("trigger: {type: scheduled, cron: '* * * * *', at: '2026-01-01T09:00:00'}", "trigger",
         "either cron or at, not both"),
        ("trigger: {type: scheduled, at: 2026-12-01}", "trigger.at", "must be a date and time"),
        ("trigger: {type: scheduled, at: '2026-12-01'}", "trigger.at", "must be a date and time"),
        ("trigger: {type: scheduled, at: tomorrow}", "trigger.at", "must be a date and time"),
        ("trigger: {type: scheduled, cron: '0 9 * * *', timezone: Mars/Olympus}",
         "trigger.timezone", "must be an IANA time zone"),
        ("trigger: {type: scheduled, cron: '0 9 * * *', timezone: Europe}",
         "trigger.timezone", "must be an IANA time zone"),
        ("trigger: {type: scheduled, cron: '0 9 * * *', on_missed: later}", "trigger.on_missed",
         "must be one of run_once, run_all, skip"),
        ("trigger: {type: automatic, event: e, kind: x}", "trigger.kind", "unknown field"),
        ("source: {records: cases}\ntrigger: {type: automatic, event: e}", "source",
         "only instant and scheduled flows take a source"),
        ("source: {records: csv}\ntrigger: {type: scheduled, cron: '0 9 * * *'}",
         "source.records", "csv is for instant flows only"),
    ],
)  # fmt: skip
def test_trigger_faults(trigger: str, field: str, message: str) -> None:
    error = only_error(HEAD + trigger + "\n")
    assert error.field == field
    assert message in error.message


def test_naive_at_with_a_bad_timezone_reports_only_the_timezone() -> None:
    error = only_error(
        HEAD + "trigger: {type: scheduled, at: '2026-12-01T09:00:00', timezone: Nowhere}\n"
    )
    assert error.field == "trigger.timezone"


@pytest.mark.parametrize(
    ("name", "message"),
    [("''", "must not be empty"), ("'   '", "must not be empty"), ("x" * 201, "at most 200"),
     ("[a]", "must be text"), ("", "is required")],
)  # fmt: skip
def test_name_faults(name: str, message: str) -> None:
    error = only_error(f"name: {name}\nconfiguration: c\ntrigger: {{type: instant}}\n")
    assert error.field == "name"
    assert message in error.message


@pytest.mark.parametrize("value", ["''", "[a]", "true"])
def test_configuration_faults(value: str) -> None:
    error = only_error(f"name: n\nconfiguration: {value}\ntrigger: {{type: instant}}\n")
    assert error.field == "configuration"
    assert error.message == "must be the id or name of an outbound configuration"


def test_name_is_stripped() -> None:
    definition = parse_flow_document("name: '  n  '\nconfiguration: c\ntrigger: {type: instant}")
    assert definition.name == "n"


# --- storing definitions -----------------------------------------------------------------

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


# --- paths, events, conditions ------------------------------------------------------------

CONTEXT: dict[str, Any] = {
    "contact": {"name": "Ada", "consent": {"sms": True}, "email": None, "tags": ["vip", "fr"]},
    "case": {"status": "resolved", "priority": 2, "score": "10", "title": ""},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("contact.name", "Ada"),
        ("contact.consent.sms", True),
        ("contact.consent", {"sms": True}),
        ("contact.email", None),
        ("contact.phone", MISSING),
        ("contact.name.first", MISSING),
        ("order.id", MISSING),
        ("contact.tags.0", MISSING),
    ],
)
def test_resolve_path(path: str, expected: Any) -> None:
    assert resolve_path(CONTEXT, path) == expected


def test_missing_sentinel() -> None:
    assert not MISSING
    assert repr(MISSING) == "MISSING"
    assert MISSING is not None


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        ("case.created", "case.created", True),
        ("case.created", "case.updated", False),
        ("case.*", "case.updated", True),
        ("case.*", "contact.updated", False),
        ("*.created", "case.created", True),
        ("case.?pdated", "case.updated", True),
        ("Case.*", "case.created", False),
        ("*", "anything", True),
    ],
)
def test_matches_event(pattern: str, event: str, expected: bool) -> None:
    assert matches_event(pattern, event) is expected


R = {
    "s": "resolved",
    "n": 2,
    "f": 2.5,
    "ns": "10",
    "b": True,
    "bs": "true",
    "empty": "",
    "none": None,
    "when": "2026-06-10T12:00:00+00:00",
    "naive": "2026-06-10T12:00:00",
    "dt": datetime(2026, 6, 10, 12, tzinfo=UTC),
    "day": date(2026, 6, 10),
    "tags": ["vip", "fr", 3],
    "phone": "+33612345678",
    "num": 33612345678,
    "text": "Hello world",
}


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        # eq / ne, with light coercion
        ("s", "eq", "resolved", True),
        ("s", "eq", "Resolved", False),
        ("s", "ne", "open", True),
        ("s", "ne", "resolved", False),
        ("n", "eq", 2, True),
        ("n", "eq", "2", True),
        ("n", "eq", "2.0", True),
        ("ns", "eq", 10, True),
        ("ns", "eq", "10.0", False),
        ("f", "eq", 2.5, True),
        ("n", "eq", "two", False),
        ("b", "eq", True, True),
        ("b", "eq", "true", True),
        ("b", "eq", "TRUE", True),
        ("b", "eq", "false", False),
        ("bs", "eq", True, True),
        ("b", "eq", 1, False),
        ("b", "eq", "yes", False),
        ("none", "eq", "x", False),
        ("none", "ne", "x", True),
        ("dt", "eq", "2026-06-10T14:00:00+02:00", True),
        ("day", "eq", "2026-06-10", True),
        # in / not_in
        ("s", "in", ["open", "resolved"], True),
        ("s", "in", ["open"], False),
        ("n", "in", ["1", "2"], True),
        ("s", "not_in", ["open"], True),
        ("s", "not_in", ["resolved"], False),
        # exists / missing
        ("s", "exists", None, True),
        ("empty", "exists", None, False),
        ("none", "exists", None, False),
        ("s", "missing", None, False),
        ("empty", "missing", None, True),
        ("none", "missing", None, True),
        ("b", "exists", None, True),
        # ordering
        ("n", "gt", 1, True),
        ("n", "gt", 2, False),
        ("n", "gte", 2, True),
        ("n", "lt", "3", True),
        ("n", "lte", 1.5, False),
        ("ns", "gt", 9, True),
        ("ns", "gt", "9", True),
        ("when", "gt", "2026-06-10T13:00:00+02:00", True),
        ("when", "lt", "2026-06-11", True),
        ("naive", "gte", "2026-06-10T12:00:00+00:00", True),
        ("dt", "lt", "2026-06-10T12:00:01Z", True),
        ("s", "gt", "open", True),
        ("s", "lt", "open", False),
        ("b", "gt", 0, False),
        ("none", "gt", 0, False),
        ("tags", "gt", "a", False),
        # contains / starts_with
        ("text", "contains", "world", True),
        ("text", "contains", "World", False),
        ("tags", "contains", "vip", True),
        ("tags", "contains", "3", True),
        ("tags", "contains", "de", False),
        ("n", "contains", 2, False),
        ("phone", "starts_with", "+33", True),
        ("phone", "starts_with", "+44", False),
        ("num", "starts_with", "336", True),
        ("b", "starts_with", "T", False),
        # since / before, with a duration (from NOW) or a date
        ("when", "since", "7d", True),
        ("when", "since", "4d", False),
        ("when", "before", "4d", True),
        ("when", "before", "P7D", False),
        ("dt", "since", "2026-06-10", True),
        ("dt", "before", "2026-06-10", False),
        ("day", "since", "2026-06-10T00:00:00Z", True),
        ("naive", "since", "2026-06-10T12:00:00+00:00", True),
        ("naive", "before", "2026-06-10T13:00:00+02:00", False),
        ("when", "since", "99999999999d", True),
        ("when", "before", "99999999999d", False),
        ("s", "since", "7d", False),
        ("when", "since", "not a time", False),
    ],
)
def test_condition_ops(field: str, op: str, value: Any, expected: bool) -> None:
    assert evaluate_conditions([Condition(field, op, value)], R, NOW) is expected


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "x", False),
        ("ne", "x", True),
        ("in", ["x"], False),
        ("not_in", ["x"], True),
        ("exists", None, False),
        ("missing", None, True),
        ("gt", 1, False),
        ("gte", 1, False),
        ("lt", 1, False),
        ("lte", 1, False),
        ("contains", "x", False),
        ("starts_with", "x", False),
        ("since", "7d", False),
        ("before", "7d", False),
    ],
)
def test_condition_ops_on_a_missing_field(op: str, value: Any, expected: bool) -> None:
    assert evaluate_conditions([Condition("absent.field", op, value)], R, NOW) is expected


def test_all_conditions_must_hold() -> None:
    conditions = [Condition("s", "eq", "resolved"), Condition("n", "gt", 1)]
    assert evaluate_conditions(conditions, R, NOW) is True
    assert evaluate_conditions([*conditions, Condition("b", "eq", False)], R, NOW) is False
    assert evaluate_conditions([], R, NOW) is True


def test_naive_now_is_utc() -> None:
    condition = Condition("when", "since", "5d")
    assert evaluate_conditions([condition], R, datetime(2026, 6, 15, 12)) is True
    assert evaluate_conditions([condition], R, datetime(2026, 6, 15, 12, 1)) is False


def test_unknown_op_at_evaluation_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown condition op"):
        evaluate_conditions([Condition("s", "like", "r%")], R, NOW)


def test_parsed_conditions_evaluate() -> None:
    definition = parse_flow_document(
        HEAD
        + doc("""
        trigger: {type: automatic, event: case.updated}
        conditions:
          - {field: case.status, value: resolved}
          - {field: case.closed_on, op: since, value: 2026-06-01}
          - {field: contact.consent.sms, value: true}
        """)
    )
    context = {
        "case": {"status": "resolved", "closed_on": "2026-06-02T08:00:00Z"},
        "contact": {"consent": {"sms": "true"}},
    }
    assert evaluate_conditions(definition.conditions, context, NOW) is True
    context["case"]["closed_on"] = "2026-05-31T08:00:00Z"
    assert evaluate_conditions(definition.conditions, context, NOW) is False


# --- recipients --------------------------------------------------------------------------

CONTACT: dict[str, Any] = {
    "name": "Ada Lovelace",
    "mobile_phone": "+33612345678",
    "whatsapp_number": "+33700000000",
    "consent": {"sms": True, "whatsapp": "no"},
    "preferred_language": "fr-FR",
    "time_zone": "Europe/Paris",
}
CASE: dict[str, Any] = {"id": "case-1", "title": "Broken boiler", "number": "CAS-0042"}


def test_render_defaults_for_sms() -> None:
    assert render_recipient({}, {"contact": CONTACT}, "sms") == {
        "tocontactid": "+33612345678",
        "optin": True,
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
        "contextitems": {"CustomerName": "Ada Lovelace"},
    }


def test_render_defaults_for_whatsapp() -> None:
    item = render_recipient({}, {"contact": CONTACT}, "whatsapp")
    assert item["tocontactid"] == "+33700000000"
    assert item["optin"] is False


def test_render_case_defaults() -> None:
    item = render_recipient({}, {"contact": CONTACT, "case": CASE}, "sms")
    assert item["contextitems"] == {
        "CustomerName": "Ada Lovelace",
        "CaseName": "Broken boiler",
        "CaseNumber": "CAS-0042",
        "regardingobjectid": "case-1",
        "entityrelationshipname": "incident_msdyn_ocoutboundmessages",
    }


def test_render_no_case_defaults_when_case_is_none() -> None:
    item = render_recipient({}, {"contact": CONTACT, "case": None}, "sms")
    assert item["contextitems"] == {"CustomerName": "Ada Lovelace"}


def test_render_given_context_items_override_and_remove_defaults() -> None:
    recipient = {"contextitems": {"CustomerName": "{contact.name}!", "CaseNumber": None}}
    item = render_recipient(recipient, {"contact": CONTACT, "case": CASE}, "sms")
    assert item["contextitems"]["CustomerName"] == "Ada Lovelace!"
    assert "CaseNumber" not in item["contextitems"]
    assert item["contextitems"]["CaseName"] == "Broken boiler"


def test_render_exact_placeholder_keeps_the_raw_value() -> None:
    context = {"contact": {**CONTACT, "score": 7, "ratio": 0.25, "vip": False, "nested": {}}}
    recipient = {
        "contextitems": {
            "Score": "{contact.score}",
            "Ratio": "{ contact.ratio }",
            "Vip": "{contact.vip}",
            "Literal": 3,
            "Flag": True,
        }
    }
    items = render_recipient(recipient, context, "sms")["contextitems"]
    assert items["Score"] == 7
    assert items["Ratio"] == 0.25
    assert items["Vip"] is False
    assert items["Literal"] == 3
    assert items["Flag"] is True


def test_render_interpolation_and_escaping() -> None:
    context = {"contact": {**CONTACT, "score": 7, "vip": True, "gone": None}}
    recipient = {
        "contextitems": {
            "Greeting": "Hello {contact.name}, score {contact.score}",
            "Flags": "vip={contact.vip} gone=[{contact.gone}] absent=[{contact.nothing}]",
            "Braces": "{{literal}} {{{contact.score}}}",
            "Plain": "no placeholders",
        }
    }
    items = render_recipient(recipient, context, "sms")["contextitems"]
    assert items["Greeting"] == "Hello Ada Lovelace, score 7"
    assert items["Flags"] == "vip=true gone=[] absent=[]"
    assert items["Braces"] == "{literal} {7}"
    assert items["Plain"] == "no placeholders"


def test_render_drops_empty_context_items() -> None:
    context = {"contact": {**CONTACT, "name": ""}, "case": {"id": None}}
    items = render_recipient({}, context, "sms")["contextitems"]
    assert items == {"entityrelationshipname": "incident_msdyn_ocoutboundmessages"}


def test_render_dates_become_iso_text() -> None:
    context = {"contact": {**CONTACT, "born": date(1815, 12, 10)}}
    items = render_recipient({"contextitems": {"Born": "{contact.born}"}}, context, "sms")
    assert items["contextitems"]["Born"] == "1815-12-10"


def test_render_non_scalar_context_item_is_an_error() -> None:
    with pytest.raises(MappingError) as caught:
        render_recipient({"contextitems": {"C": "{contact.consent}"}}, {"contact": CONTACT}, "sms")
    assert caught.value.field == "contextitems.C"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("Yes", True),
        ("1", True),
        ("y", True),
        ("ON", True),
        (1, True),
        ("false", False),
        ("No", False),
        ("0", False),
        ("n", False),
        ("off", False),
        ("", False),
        (None, False),
        (0, False),
    ],
)
def test_render_optin_coercion(value: Any, expected: bool) -> None:
    context = {"contact": {**CONTACT, "consent": {"sms": value}}}
    assert render_recipient({}, context, "sms")["optin"] is expected


def test_render_optin_missing_is_false() -> None:
    context = {"contact": {"mobile_phone": "+33612345678"}}
    assert render_recipient({}, context, "sms")["optin"] is False


def test_render_optin_literal() -> None:
    context = {"contact": {**CONTACT, "consent": {"sms": False}}}
    assert render_recipient({"optin": True}, context, "sms")["optin"] is True


@pytest.mark.parametrize("value", ["maybe", 2, ["yes"]])
def test_render_optin_that_is_not_yes_or_no(value: Any) -> None:
    context = {"contact": {**CONTACT, "consent": {"sms": value}}}
    with pytest.raises(MappingError) as caught:
        render_recipient({}, context, "sms")
    assert caught.value.field == "optin"
    assert "is not yes or no" in caught.value.message
    assert str(caught.value).startswith("optin: ")


@pytest.mark.parametrize("phone", ["", "  ", None])
def test_render_empty_phone_is_an_error(phone: Any) -> None:
    context = {"contact": {**CONTACT, "mobile_phone": phone}}
    with pytest.raises(MappingError) as caught:
        render_recipient({}, context, "sms")
    assert caught.value.field == "tocontactid"
    assert caught.value.message == "no phone number (contact.mobile_phone is empty)"


def test_render_absent_whatsapp_number_is_an_error() -> None:
    context = {"contact": {"name": "x"}}
    with pytest.raises(MappingError, match=r"contact\.whatsapp_number is empty"):
        render_recipient({}, context, "whatsapp")


def test_render_empty_interpolated_phone_names_the_expression() -> None:
    recipient = {"tocontactid": "{contact.cc}{contact.number}"}
    with pytest.raises(MappingError) as caught:
        render_recipient(recipient, {"contact": {}}, "sms")
    assert caught.value.message == "no phone number ({contact.cc}{contact.number} is empty)"


def test_render_phone_that_is_not_text() -> None:
    context = {"contact": {**CONTACT, "mobile_phone": ["+33612345678"]}}
    with pytest.raises(MappingError, match="is not a phone number"):
        render_recipient({}, context, "sms")


def test_render_numbers_in_phone_are_text() -> None:
    context = {"contact": {**CONTACT, "mobile_phone": 33612345678}}
    assert render_recipient({}, context, "sms")["tocontactid"] == "33612345678"
    assert render_recipient({"tocontactid": 33699999999}, context, "sms")["tocontactid"] == (
        "33699999999"
    )
    recipient = {"tocontactid": "+{contact.cc}{contact.n}"}
    item = render_recipient(recipient, {"contact": {"cc": 33, "n": "612345678"}}, "sms")
    assert item["tocontactid"] == "+33612345678"


def test_render_locale_and_timezone_only_when_not_empty() -> None:
    context = {"contact": {**CONTACT, "preferred_language": "", "time_zone": None}}
    item = render_recipient({}, context, "sms")
    assert "locale" not in item
    assert "timezone" not in item
    context = {"contact": {**CONTACT, "lcid": 1036}}
    item = render_recipient({"locale": "{contact.lcid}"}, context, "sms")
    assert item["locale"] == "1036"


def test_render_template_fields() -> None:
    context = {"contact": {**CONTACT, "visits": 4}}
    recipient = {
        "sendastemplate": True,
        "templateparameters": {"1": "{contact.name}", "2": "{contact.visits}", "3": 9, "4": "{x}"},
    }
    item = render_recipient(recipient, context, "whatsapp")
    assert item["sendastemplate"] is True
    assert item["templateparameters"] == {"1": "Ada Lovelace", "2": "4", "3": "9", "4": ""}
    item = render_recipient({"sendastemplate": False}, context, "whatsapp")
    assert "sendastemplate" not in item
    assert "templateparameters" not in item


def test_render_bad_expression_is_a_mapping_error() -> None:
    with pytest.raises(MappingError) as caught:
        render_recipient({"locale": "{contact.lang"}, {"contact": CONTACT}, "sms")
    assert caught.value.field == "locale"


def test_render_parsed_recipient() -> None:
    definition = parse_flow_document(
        HEAD
        + doc("""
        trigger: {type: automatic, event: case.created}
        recipient:
          optin: "{contact.consent.marketing}"
          contextitems:
            CaseName: "#{case.number}: {case.title}"
          templateparameters: {1: "{contact.name}"}
        """)
    )
    context = {"contact": {**CONTACT, "consent": {"marketing": "yes"}}, "case": CASE}
    item = render_recipient(definition.recipient, context, "sms")
    assert item["optin"] is True
    assert item["contextitems"]["CaseName"] == "#CAS-0042: Broken boiler"
    assert item["templateparameters"] == {"1": "Ada Lovelace"}


# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("24h", 86400),
        ("7d", 604800),
        ("1d12h", 129600),
        ("1d 2h 3m 4s", 93784),
        ("2H30M", 9000),
        (" 45m ", 2700),
        ("0s", 0),
        ("PT24H", 86400),
        ("P1D", 86400),
        ("P1DT12H", 129600),
        ("PT90S", 90),
        ("PT1H30M", 5400),
        ("P2W", 1209600),
        ("pt15m", 900),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a duration"),
        ("90", "use e.g. 90s"),
        ("soon", "not a duration"),
        ("1.5h", "not a duration"),
        ("-5m", "not a duration"),
        ("12h1d", "not a duration"),
        ("1d1d", "not a duration"),
        ("P", "not a duration"),
        ("PT", "not a duration"),
        ("P1DT", "not a duration"),
        ("P1M", "months and years"),
        ("P1Y", "months and years"),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


# --- schedules ---------------------------------------------------------------------------


def cron(expression: str, timezone: str = "UTC", on_missed: str = "run_once") -> Trigger:
    return Trigger(
        type="scheduled",
        event=None,
        delay_seconds=None,
        cron=expression,
        at=None,
        timezone=timezone,
        on_missed=on_missed,
    )


def times_after(trigger: Trigger, after: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    for _ in range(count):
        found = next_fire_after(trigger, after)
        assert found is not None
        out.append(found)
        after = found
    return out


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_cron_in_utc() -> None:
    trigger = cron("0 9 * * MON-FRI")
    assert times_after(trigger, utc(2026, 6, 12, 9), 2) == [
        utc(2026, 6, 15, 9),
        utc(2026, 6, 16, 9),
    ]


def test_next_fire_is_strictly_after() -> None:
    trigger = cron("0 9 * * *")
    assert next_fire_after(trigger, utc(2026, 6, 15, 8, 59, 59)) == utc(2026, 6, 15, 9)
    assert next_fire_after(trigger, utc(2026, 6, 15, 9)) == utc(2026, 6, 16, 9)


def test_naive_after_is_utc() -> None:
    assert next_fire_after(cron("0 9 * * *"), datetime(2026, 6, 15, 8)) == utc(2026, 6, 15, 9)


def test_result_is_aware_utc() -> None:
    found = next_fire_after(cron("0 9 * * *", "Europe/Paris"), utc(2026, 6, 15))
    assert found is not None and found.tzinfo is UTC


def test_paris_nine_o_clock_across_spring_forward() -> None:
    trigger = cron("0 9 * * *", "Europe/Paris")
    found = times_after(trigger, utc(2026, 3, 27, 12), 3)
    assert found == [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]
    assert {t.astimezone(PARIS).hour for t in found} == {9}


def test_paris_nine_o_clock_across_fall_back() -> None:
    trigger = cron("0 9 * * *", "Europe/Paris")
    found = times_after(trigger, utc(2026, 10, 23, 12), 3)
    assert found == [utc(2026, 10, 24, 7), utc(2026, 10, 25, 8), utc(2026, 10, 26, 8)]
    assert {t.astimezone(PARIS).hour for t in found} == {9}


def test_skipped_local_time_fires_once_at_the_change() -> None:
    trigger = cron("30 2 * * *", "Europe/Paris")
    found = times_after(trigger, utc(2026, 3, 27, 12), 3)
    # 02:30 does not exist on 29 March; it fires when the clocks jump (03:00 CEST).
    assert found == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)]


def test_repeated_local_time_fires_once() -> None:
    trigger = cron("30 2 * * *", "Europe/Paris")
    found = times_after(trigger, utc(2026, 10, 24, 12), 2)
    # 02:30 happens twice on 25 October (00:30 and 01:30 UTC); it fires the first time.
    assert found == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_half_hourly_across_spring_forward() -> None:
    trigger = cron("*/30 * * * *", "Europe/Paris")
    found = times_after(trigger, utc(2026, 3, 29, 0), 4)
    assert found == [
        utc(2026, 3, 29, 0, 30),  # 01:30 CET
        utc(2026, 3, 29, 1, 0),  # 03:00 CEST, standing in for 02:00 and 02:30
        utc(2026, 3, 29, 1, 30),
        utc(2026, 3, 29, 2, 0),
    ]


def test_half_hourly_across_fall_back() -> None:
    trigger = cron("*/30 * * * *", "Europe/Paris")
    found = times_after(trigger, utc(2026, 10, 24, 23, 45), 5)
    assert found == [
        utc(2026, 10, 25, 0, 0),  # 02:00 CEST
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST; the second 02:00 and 02:30 do not fire
        utc(2026, 10, 25, 2, 0),  # 03:00 CET
        utc(2026, 10, 25, 2, 30),
        utc(2026, 10, 25, 3, 0),
    ]


def test_next_fire_from_inside_the_repeated_hour() -> None:
    trigger = cron("*/30 * * * *", "Europe/Paris")
    # 01:10 UTC is the second 02:10 in Paris.
    assert next_fire_after(trigger, utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 25, 2)


def test_at_fires_once() -> None:
    trigger = replace(cron("* * * * *"), cron=None, at=utc(2026, 12, 1, 8))
    assert next_fire_after(trigger, utc(2026, 11, 30)) == utc(2026, 12, 1, 8)
    assert next_fire_after(trigger, utc(2026, 12, 1, 8)) is None
    assert next_fire_after(trigger, utc(2026, 12, 2)) is None


def test_a_schedule_that_never_fires() -> None:
    assert next_fire_after(cron("0 0 31 2 *"), utc(2026, 1, 1)) is None


def test_triggers_without_a_schedule() -> None:
    trigger = Trigger("automatic", "case.created", None, None, None, "UTC", "run_once")
    assert next_fire_after(trigger, NOW) is None


def test_parsed_schedule_fires() -> None:
    definition = parse_flow_document(
        HEAD + 'trigger: {type: scheduled, cron: "0 9 * * MON-FRI", timezone: Europe/Paris}\n'
    )
    assert next_fire_after(definition.trigger, utc(2026, 3, 27, 12)) == utc(2026, 3, 30, 7)


HOURLY = cron("0 * * * *")


def test_due_not_yet() -> None:
    assert due_fire_times(HOURLY, utc(2026, 6, 15, 13), NOW) == ([], utc(2026, 6, 15, 13))


def test_due_exactly_now() -> None:
    assert due_fire_times(HOURLY, NOW, NOW) == ([NOW], utc(2026, 6, 15, 13))


def test_due_run_once_fires_the_latest() -> None:
    now = utc(2026, 6, 15, 12, 20)
    assert due_fire_times(HOURLY, utc(2026, 6, 15, 9), now) == (
        [utc(2026, 6, 15, 12)],
        utc(2026, 6, 15, 13),
    )


def test_due_run_all_fires_every_missed_time() -> None:
    trigger = replace(HOURLY, on_missed="run_all")
    now = utc(2026, 6, 15, 12, 20)
    assert due_fire_times(trigger, utc(2026, 6, 15, 9), now) == (
        [utc(2026, 6, 15, 9), utc(2026, 6, 15, 10), utc(2026, 6, 15, 11), utc(2026, 6, 15, 12)],
        utc(2026, 6, 15, 13),
    )


def test_due_run_all_keeps_the_latest_max_runs() -> None:
    trigger = replace(HOURLY, on_missed="run_all")
    due, next_at = due_fire_times(trigger, utc(2026, 6, 1), NOW, max_runs=3)
    assert due == [utc(2026, 6, 15, 10), utc(2026, 6, 15, 11), utc(2026, 6, 15, 12)]
    assert next_at == utc(2026, 6, 15, 13)
    due, _ = due_fire_times(trigger, utc(2020, 1, 1), NOW)
    assert len(due) == 100
    assert due[0] == NOW - timedelta(hours=99)
    assert due[-1] == NOW


def test_due_keeps_a_stored_time_off_the_schedule() -> None:
    trigger = replace(HOURLY, on_missed="run_all")
    due, _ = due_fire_times(trigger, utc(2026, 6, 15, 10, 45), utc(2026, 6, 15, 12, 5))
    assert due == [utc(2026, 6, 15, 10, 45), utc(2026, 6, 15, 11), utc(2026, 6, 15, 12)]


def test_due_skip_within_grace() -> None:
    trigger = replace(HOURLY, on_missed="skip")
    now = utc(2026, 6, 15, 12, 4, 59)
    assert due_fire_times(trigger, utc(2026, 6, 15, 9), now) == (
        [utc(2026, 6, 15, 12)],
        utc(2026, 6, 15, 13),
    )


def test_due_skip_beyond_grace() -> None:
    trigger = replace(HOURLY, on_missed="skip")
    now = utc(2026, 6, 15, 12, 5, 1)
    assert due_fire_times(trigger, utc(2026, 6, 15, 12), now) == ([], utc(2026, 6, 15, 13))
    assert due_fire_times(trigger, utc(2026, 6, 15, 12), now, grace_seconds=600) == (
        [utc(2026, 6, 15, 12)],
        utc(2026, 6, 15, 13),
    )


def test_due_after_a_long_outage_is_quick() -> None:
    trigger = cron("* * * * *")
    due, next_at = due_fire_times(trigger, utc(2020, 1, 1), NOW)
    assert due == [NOW]
    assert next_at == NOW + timedelta(minutes=1)


def test_due_sparse_schedule_long_ago() -> None:
    trigger = cron("0 9 1 1 *", on_missed="run_all")
    due, next_at = due_fire_times(trigger, utc(2024, 1, 1, 9), NOW)
    assert due == [utc(2024, 1, 1, 9), utc(2025, 1, 1, 9), utc(2026, 1, 1, 9)]
    assert next_at == utc(2027, 1, 1, 9)


def test_due_one_time_at() -> None:
    trigger = replace(cron("* * * * *"), cron=None, at=utc(2026, 6, 15, 11))
    assert due_fire_times(trigger, utc(2026, 6, 15, 11), NOW) == ([utc(2026, 6, 15, 11)], None)
    skip = replace(trigger, on_missed="skip")
    assert due_fire_times(skip, utc(2026, 6, 15, 11), NOW) == ([], None)


def test_due_naive_times_are_utc() -> None:
    due, next_at = due_fire_times(HOURLY, datetime(2026, 6, 15, 11), datetime(2026, 6, 15, 12))
    assert due == [NOW]
    assert next_at == utc(2026, 6, 15, 13)


def test_due_in_paris_across_spring_forward() -> None:
    trigger = cron("30 2 * * *", "Europe/Paris", on_missed="run_all")
    due, next_at = due_fire_times(trigger, utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 12))
    assert due == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1)]
    assert next_at == utc(2026, 3, 30, 0, 30)


def test_due_max_runs_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_runs"):
        due_fire_times(HOURLY, utc(2026, 6, 15, 9), NOW, max_runs=0)
