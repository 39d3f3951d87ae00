"""Unit tests for outbound.domain.flow_documents: reading and checking flow documents."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime

import pytest

from outbound.domain.conditions import Condition
from outbound.domain.flow_definitions import Trigger
from outbound.domain.flow_documents import FieldError, FlowDefinitionError, parse_flow_document
from outbound.errors import DomainError


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
    text = '{\n\t"name": "bulk send",\n\t"configuration": 42,\n\t"trigger": {"type": "instant"},'
    text += '\n\t"source": {"records": "csv"}\n}'
    definition = parse_flow_document(text)
    assert definition.name == "bulk send"
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
    # A domain error: the web layer gives it its HTTP answer (tests/unit/test_errors.py).
    assert isinstance(error, DomainError)
    assert not hasattr(error, "status_code")
    assert error.field == "name"
    assert str(error) == "name (line 1): must not be empty (and 6 more)"


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


def test_names_usable_in_urls() -> None:
    for bad in ("a/b", "tab\\there"):
        with pytest.raises(FlowDefinitionError) as caught:
            parse_flow_document(f'name: "{bad}"\nconfiguration: c\ntrigger: {{type: instant}}\n')
        assert caught.value.errors[0].field == "name"


def test_a_documents_faults_are_said_in_french_with_their_place() -> None:
    from outbound.console.i18n import Translator

    with pytest.raises(FlowDefinitionError) as caught:
        parse_flow_document(
            doc(
                """
                name: x
                configuration: c
                trigger: {type: automatic, event: a, delay: 3months}
                recipient: {optin: [1]}
                """
            )
        )
    english = "trigger.delay (line 3): not a duration: '3months' " + (
        "(use e.g. 90s, 15m, 24h, 7d, 1d12h or PT24H) (and 1 more)"
    )
    assert str(caught.value) == english
    french = Translator("fr")
    assert french.error(caught.value.args[0]) == (
        "trigger.delay (ligne 3) : pas une durée : '3months' "
        "(par exemple 90s, 15m, 24h, 7d, 1d12h ou PT24H) (et 1 de plus)"
    )
    assert [french.error(e.message) for e in caught.value.errors] == [
        "pas une durée : '3months' (par exemple 90s, 15m, 24h, 7d, 1d12h ou PT24H)",
        "doit être une expression ou true/false",
    ]
