"""Flow documents: reading and checking a flow written as YAML (or JSON, read by the same loader).

A flow document reads::

    name: case-created
    configuration: Case updates
    trigger: {type: automatic, event: "case.*", delay: 24h}
    conditions:
      - {field: case.status, op: eq, value: resolved}
    recipient:
      contextitems: {CaseName: "{case.title}"}

:func:`parse_flow_document` checks a whole document and builds its
:class:`~outbound.domain.flow_definitions.FlowDefinition`, or reports every fault at once as a
:class:`FlowDefinitionError`, each :class:`FieldError` naming a dotted field path and the line
it is written on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import CroniterBadDateError, croniter

from outbound.domain.conditions import (
    CONDITION_OPS,
    Condition,
    is_field_path,
    is_threshold,
    parse_datetime,
)
from outbound.domain.durations import DURATION_HINT, parse_duration
from outbound.domain.flow_definitions import DEFAULT_TIMEZONE, FlowDefinition, Trigger, TriggerType
from outbound.domain.recipients import check_expression
from outbound.domain.texts import unstorable
from outbound.domain.timezones import local_to_utc
from outbound.errors import FieldError, FlowDefinitionError, message_of
from outbound.texts import N_

__all__ = ["FieldError", "FlowDefinitionError", "parse_flow_document"]

_TRIGGER_TYPES: Final = tuple(kind.value for kind in TriggerType)
_ON_MISSED: Final = ("run_once", "run_all", "skip")
_SOURCE_RECORDS: Final = ("contacts", "cases", "csv")
_MAX_NAME_LENGTH: Final = 200
_MAX_DESCRIPTION_LENGTH: Final = 1000
_MAX_DELAY_SECONDS: Final = 366 * 86400

_TOP_KEYS: Final = (
    "name", "description", "enabled", "configuration", "trigger", "source", "conditions",
    "recipient",
)  # fmt: skip
_TRIGGER_KEYS: Final = ("type", "event", "delay", "cron", "at", "timezone", "on_missed")
_TRIGGER_KIND_OF_KEY: Final = {
    "event": "automatic",
    "delay": "automatic",
    "cron": "scheduled",
    "at": "scheduled",
    "timezone": "scheduled",
    "on_missed": "scheduled",
}
_CONDITION_KEYS: Final = ("field", "op", "value")
_RECIPIENT_KEYS: Final = (
    "tocontactid", "optin", "locale", "timezone", "contextitems", "sendastemplate",
    "templateparameters",
)  # fmt: skip
_EVENT_RE: Final = re.compile(r"\S+")
# The search is bounded: a schedule that cannot fire (30 February) must not spin forever.
_CRON_PROBE_START: Final = datetime(2000, 1, 1)


def parse_flow_document(text: str) -> FlowDefinition:
    """Check a YAML or JSON flow document; raise :class:`FlowDefinitionError` with every fault."""
    if text.lstrip().startswith(("{", "[")):
        text = _untab_json(text)
    try:
        lines, data = _load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        problem: str = exc.problem or exc.context or N_("syntax error")
        if exc.problem and exc.context and exc.context_mark is not None:
            problem = N_(
                "%(problem)s (%(context)s on line %(line)s)",
                problem=problem,
                context=exc.context,
                line=exc.context_mark.line + 1,
            )
        message = N_("not valid YAML: %(problem)s", problem=problem)
        raise FlowDefinitionError([FieldError("document", line, message)]) from exc
    except yaml.YAMLError as exc:
        error = FieldError("document", None, N_("not valid YAML: %(problem)s", problem=str(exc)))
        raise FlowDefinitionError([error]) from exc
    if lines is None:
        raise FlowDefinitionError([FieldError("document", 1, N_("the document is empty"))])
    fault = unstorable(data, numbers=False)
    if fault is not None:
        # Refused before any message can quote the text back (numbers are checked in place).
        raise FlowDefinitionError([FieldError("document", None, fault)])
    checker = _Checker(lines.lines)
    checker.errors.extend(lines.duplicates)
    if not isinstance(data, dict):
        checker.error(
            "document", N_("must be a mapping of fields (name, configuration, trigger...)")
        )
        raise FlowDefinitionError(checker.errors)
    definition = checker.document(data)
    if checker.errors or definition is None:
        raise FlowDefinitionError(sorted(checker.errors, key=lambda e: e.line or 0))
    return definition


def _load(text: str) -> tuple[_Lines | None, Any]:
    """The line numbers and the data of a single-document stream (None lines if it is empty)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        # Lines first: building the data rewrites merge keys (<<) in the node tree.
        lines = _line_map(node)
        return lines, loader.construct_document(node)
    finally:
        loader.dispose()


def _untab_json(text: str) -> str:
    """Tabs between JSON tokens as spaces (YAML refuses tabs there; same length, same lines)."""
    out: list[str] = []
    in_string = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif in_string:
            escaped = char == "\\"
            in_string = char != '"'
        elif char == '"':
            in_string = True
        elif char == "\t":
            char = " "
        out.append(char)
    return "".join(out)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Lines(NamedTuple):
    lines: dict[str, int]  # field path -> 1-based line; "" is the document
    duplicates: list[FieldError]


def _line_map(root: yaml.Node) -> _Lines:
    lines = {"": root.start_mark.line + 1}
    duplicates: list[FieldError] = []

    walked: set[int] = set()

    def walk(node: yaml.Node, path: str) -> None:
        # An aliased node is walked once: aliases can nest exponentially or loop.
        if id(node) in walked:
            return
        walked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                child, line = _join(path, key_node.value), key_node.start_mark.line + 1
                if key_node.value in seen:
                    message = N_(
                        "is given twice (first on line %(line)s)", line=seen[key_node.value]
                    )
                    duplicates.append(FieldError(child, line, message))
                    continue
                seen[key_node.value] = lines[child] = line
                walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = f"{path}[{index}]"
                lines[child] = item.start_mark.line + 1
                walk(item, child)

    walk(root, "")
    return _Lines(lines, duplicates)


def _parent(path: str) -> str:
    return path[: max(path.rfind("."), path.rfind("["), 0)]


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | date)


def _scalar(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _names(values: Sequence[str]) -> str:
    return ", ".join(values)


class _Checker:
    """Collects the faults of one document while building its definition."""

    def __init__(self, lines: dict[str, int]) -> None:
        self.lines = lines
        self.errors: list[FieldError] = []

    def error(self, path: str, message: str) -> None:
        """Note a fault; ``message`` is a text (:func:`~outbound.texts.N_`)."""
        key = "" if path == "document" else path
        while key not in self.lines:
            key = _parent(key)
        self.errors.append(FieldError(path, self.lines[key], message))

    def mapping(self, value: Any, path: str, allowed: Sequence[str]) -> dict[Any, Any] | None:
        if not isinstance(value, dict):
            self.error(path, N_("must be a mapping"))
            return None
        for key in value:
            if key not in allowed:
                self.error(
                    _join(path, str(key)),
                    N_("unknown field; expected %(fields)s", fields=_names(allowed)),
                )
        return value

    def text(self, data: dict[Any, Any], path: str, key: str, *, required: bool) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.error(_join(path, key), N_("is required"))
            return None
        if not isinstance(value, str):
            self.error(_join(path, key), N_("must be text"))
            return None
        return value

    def choice(self, data: dict[Any, Any], path: str, key: str, options: Sequence[str]) -> Any:
        value = data.get(key)
        if value is not None and value not in options:
            self.error(_join(path, key), N_("must be one of %(options)s", options=_names(options)))
            return None
        return value

    def document(self, data: dict[Any, Any]) -> FlowDefinition | None:
        self.mapping(data, "", _TOP_KEYS)
        name = self.text(data, "", "name", required=True)
        if name is not None:
            name = name.strip()
            if not name:
                self.error("name", N_("must not be empty"))
            elif len(name) > _MAX_NAME_LENGTH:
                self.error(
                    "name",
                    N_("must be at most %(max_length)s characters", max_length=_MAX_NAME_LENGTH),
                )
            elif "/" in name or any(ord(c) < 32 for c in name):
                # The name is used in URLs (/v1/flows/{name}) and on the command line.
                self.error("name", N_("must not contain '/' or control characters"))
        description = self.text(data, "", "description", required=False)
        if description is not None and len(description) > _MAX_DESCRIPTION_LENGTH:
            message = N_(
                "must be at most %(max_length)s characters", max_length=_MAX_DESCRIPTION_LENGTH
            )
            self.error("description", message)
        enabled = data.get("enabled", True)
        if enabled is None:
            enabled = True
        elif not isinstance(enabled, bool):
            self.error("enabled", N_("must be true or false"))
        configuration = data.get("configuration")
        if configuration is None:
            self.error("configuration", N_("is required"))
        elif isinstance(configuration, int) and not isinstance(configuration, bool):
            configuration = str(configuration)
        elif not isinstance(configuration, str) or not configuration.strip():
            self.error("configuration", N_("must be the id or name of an outbound configuration"))
        trigger = self.trigger(data.get("trigger"))
        kind = data["trigger"].get("type") if isinstance(data.get("trigger"), dict) else None
        source_records = self.source(data.get("source"), kind)
        conditions = self.conditions(data.get("conditions"))
        recipient = self.recipient(data.get("recipient"))
        if self.errors or trigger is None:
            return None
        return FlowDefinition(
            name=str(name),
            description=description,
            enabled=bool(enabled),
            configuration=str(configuration).strip(),
            trigger=trigger,
            source_records=source_records,
            conditions=conditions,
            recipient=recipient,
        )

    def trigger(self, raw: Any) -> Trigger | None:
        if raw is None:
            self.error("trigger", N_("is required"))
            return None
        data = self.mapping(raw, "trigger", _TRIGGER_KEYS)
        if data is None:
            return None
        before = len(self.errors)
        kind = data.get("type")
        if kind is None:
            self.error("trigger.type", N_("is required"))
        elif kind not in _TRIGGER_TYPES:
            self.error(
                "trigger.type", N_("must be one of %(options)s", options=_names(_TRIGGER_TYPES))
            )
            kind = None
        present = {key for key in _TRIGGER_KIND_OF_KEY if key in data}
        for key in sorted(present):
            if kind is not None and _TRIGGER_KIND_OF_KEY[key] != kind:
                message = N_(
                    "only %(kind)s triggers take %(key)s", kind=_TRIGGER_KIND_OF_KEY[key], key=key
                )
                self.error(f"trigger.{key}", message)
                present.discard(key)
        event = None
        if kind == "automatic" or (kind is None and "event" in present):
            event = self.text(data, "trigger", "event", required=kind == "automatic")
        if event is not None and not _EVENT_RE.fullmatch(event):
            self.error("trigger.event", N_("must be an event type such as case.created or case.*"))
        delay = None
        if "delay" in present and data["delay"] is not None:
            delay = self.delay(data["delay"])
        zone_name = DEFAULT_TIMEZONE
        zone: ZoneInfo | None = ZoneInfo(DEFAULT_TIMEZONE)
        if "timezone" in present and data["timezone"] is not None:
            zone_name, zone = data["timezone"], _zone(data["timezone"])
            if zone is None:
                self.error("trigger.timezone", N_("must be an IANA time zone such as Europe/Paris"))
        on_missed = "run_once"
        if "on_missed" in present:
            on_missed = self.choice(data, "trigger", "on_missed", _ON_MISSED) or on_missed
        cron = self.cron(data.get("cron")) if "cron" in present else None
        at = self.at(data.get("at"), zone) if "at" in present else None
        if kind == "scheduled":
            if "cron" in present and "at" in present:
                self.error("trigger", N_("give either cron or at, not both"))
            elif "cron" not in present and "at" not in present:
                self.error("trigger", N_("a scheduled trigger needs cron (repeating) or at (once)"))
        if len(self.errors) > before or kind is None:
            return None
        return Trigger(kind, event, delay, cron, at, zone_name, on_missed)

    def delay(self, value: Any) -> int | None:
        if not isinstance(value, str):
            self.error("trigger.delay", N_("must be a duration (%(hint)s)", hint=DURATION_HINT))
            return None
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.error("trigger.delay", message_of(exc))
            return None
        if seconds <= 0:
            self.error("trigger.delay", N_("must be longer than 0 seconds"))
        elif seconds > _MAX_DELAY_SECONDS:
            self.error("trigger.delay", N_("must be at most 366 days"))
        return seconds

    def cron(self, value: Any) -> str | None:
        if not isinstance(value, str):
            self.error("trigger.cron", N_("must be a cron expression such as '0 9 * * MON-FRI'"))
            return None
        fields = value.split()
        if len(fields) != 5:
            message = N_(
                "must have 5 fields (minute hour day month weekday), not %(count)s",
                count=len(fields),
            )
            self.error("trigger.cron", message)
            return None
        expression = " ".join(fields)
        if not croniter.is_valid(expression):
            self.error("trigger.cron", N_("not a valid cron expression"))
            return None
        try:
            croniter(expression, _CRON_PROBE_START).get_next(datetime)
        except CroniterBadDateError:
            self.error("trigger.cron", N_("never matches a date"))
            return None
        return expression

    def at(self, value: Any, zone: ZoneInfo | None) -> datetime | None:
        moment = parse_datetime(value) if isinstance(value, str | datetime) else None
        if moment is None or (isinstance(value, str) and len(value.strip()) <= 10):
            self.error("trigger.at", N_("must be a date and time such as 2026-12-01T09:00:00"))
            return None
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)
        return None if zone is None else local_to_utc(moment, zone)

    def source(self, raw: Any, kind: Any) -> str | None:
        if raw is not None and kind == "automatic":
            self.error("source", N_("only instant and scheduled flows take a source"))
            return None
        records = "contacts"
        if raw is not None:
            data = self.mapping(raw, "source", ("records",))
            if data is not None:
                records = self.choice(data, "source", "records", _SOURCE_RECORDS) or "contacts"
                if records == "csv" and kind == "scheduled":
                    message = N_("csv is for instant flows only (the list is uploaded to each run)")
                    self.error("source.records", message)
        return None if kind == "automatic" else records

    def conditions(self, raw: Any) -> tuple[Condition, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.error("conditions", N_("must be a list of conditions"))
            return ()
        out = []
        for index, item in enumerate(raw):
            condition = self.condition(item, f"conditions[{index}]")
            if condition is not None:
                out.append(condition)
        return tuple(out)

    def condition(self, raw: Any, path: str) -> Condition | None:
        data = self.mapping(raw, path, _CONDITION_KEYS)
        if data is None:
            return None
        before = len(self.errors)
        name = self.text(data, path, "field", required=True)
        if name is not None and not is_field_path(name):
            self.error(f"{path}.field", N_("must be a dotted path such as case.status"))
        op = data.get("op", "eq")
        if not isinstance(op, str) or op not in CONDITION_OPS:
            self.error(
                f"{path}.op", N_("must be one of %(options)s", options=_names(CONDITION_OPS))
            )
            return None
        value = self.condition_value(data, f"{path}.value", op)
        if len(self.errors) > before or name is None:
            return None
        return Condition(name, op, value)

    def condition_value(self, data: dict[Any, Any], path: str, op: str) -> Any:
        value = data.get("value")
        if op in ("exists", "missing"):
            if "value" in data:
                self.error(path, N_("is not used with %(op)s", op=op))
            return None
        if value is None:
            self.error(path, N_("is required"))
        elif op in ("in", "not_in"):
            if isinstance(value, list) and all(_is_scalar(v) for v in value):
                return [_scalar(v) for v in value]
            self.error(path, N_("must be a list of values for %(op)s", op=op))
        elif op in ("since", "before"):
            if isinstance(value, date) or (isinstance(value, str) and is_threshold(value)):
                return _scalar(value)
            self.error(path, N_("must be a date (2026-01-31), a date and time or a duration (7d)"))
        elif op == "starts_with":
            if isinstance(value, str | int) and not isinstance(value, bool):
                return value
            self.error(path, N_("must be text"))
        elif op in ("gt", "gte", "lt", "lte"):
            if _is_scalar(value) and not isinstance(value, bool):
                return _scalar(value)
            self.error(path, N_("must be a number, a date or text"))
        elif _is_scalar(value):
            return _scalar(value)
        else:
            self.error(path, N_("must be text, a number, a date or true/false"))
        return None

    def recipient(self, raw: Any) -> dict[str, Any]:
        if raw is None:
            return {}
        data = self.mapping(raw, "recipient", _RECIPIENT_KEYS)
        if data is None:
            return {}
        for key in ("tocontactid", "optin", "locale", "timezone"):
            value = data.get(key)
            if isinstance(value, str):
                self.expression(value, f"recipient.{key}")
            elif key == "optin" and isinstance(value, bool):
                pass
            elif key == "tocontactid" and isinstance(value, int) and not isinstance(value, bool):
                pass
            elif value is not None:
                message = N_("must be an expression")
                if key == "optin":
                    message = N_("must be an expression or true/false")
                self.error(f"recipient.{key}", message)
        if "sendastemplate" in data and not isinstance(data["sendastemplate"], bool):
            self.error("recipient.sendastemplate", N_("must be true or false"))
        result = {str(k): v for k, v in data.items() if k in _RECIPIENT_KEYS}
        for key in ("contextitems", "templateparameters"):
            if data.get(key) is not None:
                result[key] = self.expression_map(data[key], f"recipient.{key}")
        return result

    def expression_map(self, raw: Any, path: str) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.error(path, N_("must be a mapping of names to values"))
            return {}
        out: dict[str, Any] = {}
        parameters = path.endswith("templateparameters")
        for key, value in raw.items():
            child = _join(path, str(key))
            if not isinstance(key, str) and not (parameters and isinstance(key, int)):
                self.error(child, N_("names must be text"))
            elif isinstance(value, str):
                self.expression(value, child)
            elif parameters and (isinstance(value, bool | date) or not _is_scalar(value)):
                self.error(child, N_("must be an expression, text or a number"))
            elif value is not None and (isinstance(value, date) or not _is_scalar(value)):
                # None is allowed: it removes a default context item.
                self.error(child, N_("must be an expression, text, a number or true/false"))
            out[str(key)] = value
        return out

    def expression(self, text: str, path: str) -> None:
        try:
            check_expression(text)
        except ValueError as exc:
            self.error(path, message_of(exc))


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
