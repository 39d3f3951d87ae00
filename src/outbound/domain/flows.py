"""Flow documents: what a flow is, when it fires, which records it keeps, what it sends.

A flow document is YAML (or JSON, read by the same loader)::

    name: case-created
    configuration: Case updates
    trigger: {type: automatic, event: "case.*", delay: 24h}
    conditions:
      - {field: case.status, op: eq, value: resolved}
    recipient:
      contextitems: {CaseName: "{case.title}"}

:func:`parse_flow_document` checks a whole document and reports every fault at once as a
:class:`FlowDefinitionError`, each :class:`FieldError` naming a dotted field path and the line
it is written on. The rest is pure rules used at run time: :func:`evaluate_conditions`,
:func:`render_recipient` (a record's context to a send request's contact item), and the
schedule arithmetic :func:`next_fire_after` / :func:`due_fire_times`.

Schedules are evaluated in local wall-clock time, as cron does: ``0 9 * * *`` in Europe/Paris
stays at 09:00 across daylight saving changes; a local time that does not exist (skipped when
clocks go forward) fires once, at the moment of the change; a local time that happens twice
(clocks go back) fires once, the first time.
"""

from __future__ import annotations

import enum
import fnmatch
import math
import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import CroniterBadDateError, croniter

from outbound.errors import DomainError, InvalidRequestError

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

_TRIGGER_TYPES: Final = ("automatic", "instant", "scheduled")
_ON_MISSED: Final = ("run_once", "run_all", "skip")
_SOURCE_RECORDS: Final = ("contacts", "cases", "csv")
_OPS: Final = (
    "eq", "ne", "in", "not_in", "exists", "missing", "gt", "gte", "lt", "lte",
    "contains", "starts_with", "since", "before",
)  # fmt: skip
_DEFAULT_TIMEZONE: Final = "UTC"
_MAX_NAME_LENGTH: Final = 200
_MAX_DESCRIPTION_LENGTH: Final = 1000
_MAX_DELAY_SECONDS: Final = 366 * 86400
_CASE_RELATIONSHIP: Final = "incident_msdyn_ocoutboundmessages"
_PHONE_FIELDS: Final = {"sms": "mobile_phone", "whatsapp": "whatsapp_number"}

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
_PATH_RE: Final = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_EVENT_RE: Final = re.compile(r"\S+")
_NUMBER_RE: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_COMPACT_DURATION_RE: Final = re.compile(
    r"(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?", re.IGNORECASE
)
_ISO_DURATION_RE: Final = re.compile(
    r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", re.IGNORECASE
)
_TRUE_WORDS: Final = frozenset({"true", "yes", "1", "y", "on"})
_FALSE_WORDS: Final = frozenset({"false", "no", "0", "n", "off", ""})
_DURATION_HINT: Final = "use e.g. 90s, 15m, 24h, 7d, 1d12h or PT24H"
# The search is bounded: a schedule that cannot fire (30 February) must not spin forever.
_CRON_PROBE_START: Final = datetime(2000, 1, 1)


# --- errors ----------------------------------------------------------------------------------


class FieldError(NamedTuple):
    """One fault of a flow document: a dotted field path, its 1-based line, and why."""

    field: str
    line: int | None
    message: str


def _describe(error: FieldError) -> str:
    where = error.field if error.line is None else f"{error.field} (line {error.line})"
    return f"{where}: {error.message}"


class FlowDefinitionError(InvalidRequestError):
    """A flow document has faults; ``errors`` lists all of them, the first in the message."""

    code = "invalid_flow"

    def __init__(self, errors: Sequence[FieldError]) -> None:
        if not errors:
            raise ValueError("FlowDefinitionError needs at least one FieldError")
        message = _describe(errors[0])
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        super().__init__(
            message,
            field=errors[0].field,
            code="invalid_flow",
            details={"errors": [error._asdict() for error in errors]},
        )
        self.errors = list(errors)


class MappingError(DomainError):
    """A record cannot become a contact item; ``field`` names the recipient key at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- the definition --------------------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    """When a flow runs. ``at`` is aware UTC; ``timezone``/``on_missed`` matter when scheduled."""

    type: str
    event: str | None = None
    delay_seconds: int | None = None
    cron: str | None = None
    at: datetime | None = None
    timezone: str = _DEFAULT_TIMEZONE
    on_missed: str = "run_once"


@dataclass(frozen=True)
class Condition:
    """``field`` (a dotted path into a record's context) ``op`` ``value``."""

    field: str
    op: str = "eq"
    value: Any = None


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
            at=None if at is None else _as_utc(datetime.fromisoformat(at)),
            timezone=raw.get("timezone") or _DEFAULT_TIMEZONE,
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


# --- parsing ---------------------------------------------------------------------------------


def parse_flow_document(text: str) -> FlowDefinition:
    """Check a YAML or JSON flow document; raise :class:`FlowDefinitionError` with every fault."""
    if text.lstrip().startswith(("{", "[")):
        text = _untab_json(text)
    try:
        lines, data = _load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        problem = exc.problem or exc.context or "syntax error"
        if exc.problem and exc.context and exc.context_mark is not None:
            problem += f" ({exc.context} on line {exc.context_mark.line + 1})"
        raise FlowDefinitionError(
            [FieldError("document", line, f"not valid YAML: {problem}")]
        ) from exc
    except yaml.YAMLError as exc:
        error = FieldError("document", None, f"not valid YAML: {exc}")
        raise FlowDefinitionError([error]) from exc
    if lines is None:
        raise FlowDefinitionError([FieldError("document", 1, "the document is empty")])
    checker = _Checker(lines.lines)
    checker.errors.extend(lines.duplicates)
    if not isinstance(data, dict):
        checker.error("document", "must be a mapping of fields (name, configuration, trigger...)")
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
                    message = f"is given twice (first on line {seen[key_node.value]})"
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
        key = "" if path == "document" else path
        while key not in self.lines:
            key = _parent(key)
        self.errors.append(FieldError(path, self.lines[key], message))

    def mapping(self, value: Any, path: str, allowed: Sequence[str]) -> dict[Any, Any] | None:
        if not isinstance(value, dict):
            self.error(path, "must be a mapping")
            return None
        for key in value:
            if key not in allowed:
                self.error(_join(path, str(key)), f"unknown field; expected {_names(allowed)}")
        return value

    def text(self, data: dict[Any, Any], path: str, key: str, *, required: bool) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.error(_join(path, key), "is required")
            return None
        if not isinstance(value, str):
            self.error(_join(path, key), "must be text")
            return None
        return value

    def choice(self, data: dict[Any, Any], path: str, key: str, options: Sequence[str]) -> Any:
        value = data.get(key)
        if value is not None and value not in options:
            self.error(_join(path, key), f"must be one of {_names(options)}")
            return None
        return value

    def document(self, data: dict[Any, Any]) -> FlowDefinition | None:
        self.mapping(data, "", _TOP_KEYS)
        name = self.text(data, "", "name", required=True)
        if name is not None:
            name = name.strip()
            if not name:
                self.error("name", "must not be empty")
            elif len(name) > _MAX_NAME_LENGTH:
                self.error("name", f"must be at most {_MAX_NAME_LENGTH} characters")
        description = self.text(data, "", "description", required=False)
        if description is not None and len(description) > _MAX_DESCRIPTION_LENGTH:
            self.error("description", f"must be at most {_MAX_DESCRIPTION_LENGTH} characters")
        enabled = data.get("enabled", True)
        if enabled is None:
            enabled = True
        elif not isinstance(enabled, bool):
            self.error("enabled", "must be true or false")
        configuration = data.get("configuration")
        if configuration is None:
            self.error("configuration", "is required")
        elif isinstance(configuration, int) and not isinstance(configuration, bool):
            configuration = str(configuration)
        elif not isinstance(configuration, str) or not configuration.strip():
            self.error("configuration", "must be the id or name of an outbound configuration")
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
            self.error("trigger", "is required")
            return None
        data = self.mapping(raw, "trigger", _TRIGGER_KEYS)
        if data is None:
            return None
        before = len(self.errors)
        kind = data.get("type")
        if kind is None:
            self.error("trigger.type", "is required")
        elif kind not in _TRIGGER_TYPES:
            self.error("trigger.type", f"must be one of {_names(_TRIGGER_TYPES)}")
            kind = None
        present = {key for key in _TRIGGER_KIND_OF_KEY if key in data}
        for key in sorted(present):
            if kind is not None and _TRIGGER_KIND_OF_KEY[key] != kind:
                self.error(
                    f"trigger.{key}", f"only {_TRIGGER_KIND_OF_KEY[key]} triggers take {key}"
                )
                present.discard(key)
        event = None
        if kind == "automatic" or (kind is None and "event" in present):
            event = self.text(data, "trigger", "event", required=kind == "automatic")
        if event is not None and not _EVENT_RE.fullmatch(event):
            self.error("trigger.event", "must be an event type such as case.created or case.*")
        delay = None
        if "delay" in present and data["delay"] is not None:
            delay = self.delay(data["delay"])
        zone_name = _DEFAULT_TIMEZONE
        zone: ZoneInfo | None = ZoneInfo(_DEFAULT_TIMEZONE)
        if "timezone" in present and data["timezone"] is not None:
            zone_name, zone = data["timezone"], _zone(data["timezone"])
            if zone is None:
                self.error("trigger.timezone", "must be an IANA time zone such as Europe/Paris")
        on_missed = "run_once"
        if "on_missed" in present:
            on_missed = self.choice(data, "trigger", "on_missed", _ON_MISSED) or on_missed
        cron = self.cron(data.get("cron")) if "cron" in present else None
        at = self.at(data.get("at"), zone) if "at" in present else None
        if kind == "scheduled":
            if "cron" in present and "at" in present:
                self.error("trigger", "give either cron or at, not both")
            elif "cron" not in present and "at" not in present:
                self.error("trigger", "a scheduled trigger needs cron (repeating) or at (once)")
        if len(self.errors) > before or kind is None:
            return None
        return Trigger(kind, event, delay, cron, at, zone_name, on_missed)

    def delay(self, value: Any) -> int | None:
        if not isinstance(value, str):
            self.error("trigger.delay", f"must be a duration ({_DURATION_HINT})")
            return None
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.error("trigger.delay", str(exc))
            return None
        if seconds <= 0:
            self.error("trigger.delay", "must be longer than 0 seconds")
        elif seconds > _MAX_DELAY_SECONDS:
            self.error("trigger.delay", "must be at most 366 days")
        return seconds

    def cron(self, value: Any) -> str | None:
        if not isinstance(value, str):
            self.error("trigger.cron", "must be a cron expression such as '0 9 * * MON-FRI'")
            return None
        fields = value.split()
        if len(fields) != 5:
            message = f"must have 5 fields (minute hour day month weekday), not {len(fields)}"
            self.error("trigger.cron", message)
            return None
        expression = " ".join(fields)
        if not croniter.is_valid(expression):
            self.error("trigger.cron", "not a valid cron expression")
            return None
        try:
            croniter(expression, _CRON_PROBE_START).get_next(datetime)
        except CroniterBadDateError:
            self.error("trigger.cron", "never matches a date")
            return None
        return expression

    def at(self, value: Any, zone: ZoneInfo | None) -> datetime | None:
        moment = _parse_datetime(value) if isinstance(value, str | datetime) else None
        if moment is None or (isinstance(value, str) and len(value.strip()) <= 10):
            self.error("trigger.at", "must be a date and time such as 2026-12-01T09:00:00")
            return None
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)
        return None if zone is None else _local_to_utc(moment, zone)

    def source(self, raw: Any, kind: Any) -> str | None:
        if raw is not None and kind == "automatic":
            self.error("source", "only instant and scheduled flows take a source")
            return None
        records = "contacts"
        if raw is not None:
            data = self.mapping(raw, "source", ("records",))
            if data is not None:
                records = self.choice(data, "source", "records", _SOURCE_RECORDS) or "contacts"
                if records == "csv" and kind == "scheduled":
                    message = "csv is for instant flows only (the list is uploaded to each run)"
                    self.error("source.records", message)
        return None if kind == "automatic" else records

    def conditions(self, raw: Any) -> tuple[Condition, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.error("conditions", "must be a list of conditions")
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
        if name is not None and not _PATH_RE.fullmatch(name):
            self.error(f"{path}.field", "must be a dotted path such as case.status")
        op = data.get("op", "eq")
        if not isinstance(op, str) or op not in _OPS:
            self.error(f"{path}.op", f"must be one of {_names(_OPS)}")
            return None
        value = self.condition_value(data, f"{path}.value", op)
        if len(self.errors) > before or name is None:
            return None
        return Condition(name, op, value)

    def condition_value(self, data: dict[Any, Any], path: str, op: str) -> Any:
        value = data.get("value")
        if op in ("exists", "missing"):
            if "value" in data:
                self.error(path, f"is not used with {op}")
            return None
        if value is None:
            self.error(path, "is required")
        elif op in ("in", "not_in"):
            if isinstance(value, list) and all(_is_scalar(v) for v in value):
                return [_scalar(v) for v in value]
            self.error(path, f"must be a list of values for {op}")
        elif op in ("since", "before"):
            if isinstance(value, date) or (isinstance(value, str) and _is_moment(value)):
                return _scalar(value)
            self.error(path, "must be a date (2026-01-31), a date and time or a duration (7d)")
        elif op == "starts_with":
            if isinstance(value, str | int) and not isinstance(value, bool):
                return value
            self.error(path, "must be text")
        elif op in ("gt", "gte", "lt", "lte"):
            if _is_scalar(value) and not isinstance(value, bool):
                return _scalar(value)
            self.error(path, "must be a number, a date or text")
        elif _is_scalar(value):
            return _scalar(value)
        else:
            self.error(path, "must be text, a number, a date or true/false")
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
                kinds = {"optin": "an expression or true/false"}
                self.error(f"recipient.{key}", f"must be {kinds.get(key, 'an expression')}")
        if "sendastemplate" in data and not isinstance(data["sendastemplate"], bool):
            self.error("recipient.sendastemplate", "must be true or false")
        result = {str(k): v for k, v in data.items() if k in _RECIPIENT_KEYS}
        for key in ("contextitems", "templateparameters"):
            if data.get(key) is not None:
                result[key] = self.expression_map(data[key], f"recipient.{key}")
        return result

    def expression_map(self, raw: Any, path: str) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.error(path, "must be a mapping of names to values")
            return {}
        out: dict[str, Any] = {}
        parameters = path.endswith("templateparameters")
        for key, value in raw.items():
            child = _join(path, str(key))
            if not isinstance(key, str) and not (parameters and isinstance(key, int)):
                self.error(child, "names must be text")
            elif isinstance(value, str):
                self.expression(value, child)
            elif parameters and (isinstance(value, bool | date) or not _is_scalar(value)):
                self.error(child, "must be an expression, text or a number")
            elif value is not None and (isinstance(value, date) or not _is_scalar(value)):
                # None is allowed: it removes a default context item.
                self.error(child, "must be an expression, text, a number or true/false")
            out[str(key)] = value
        return out

    def expression(self, text: str, path: str) -> None:
        try:
            _parse_expression(text)
        except ValueError as exc:
            self.error(path, str(exc))


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _is_moment(text: str) -> bool:
    if _parse_datetime(text) is not None:
        return True
    try:
        parse_duration(text)
    except ValueError:
        return False
    return True


# --- durations and datetimes -----------------------------------------------------------------


def parse_duration(text: str) -> int:
    """Seconds in ``90s``, ``15m``, ``24h``, ``7d``, ``1d12h`` or ISO-8601 ``PT24H``/``P1D``."""
    value = text.strip()
    iso = _ISO_DURATION_RE.fullmatch(value)
    if iso is not None and value.upper() not in ("P", "PT") and not value.upper().endswith("T"):
        weeks, days, hours, minutes, seconds = (int(g or 0) for g in iso.groups())
        return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds
    if value[:1].upper() == "P":
        raise ValueError(
            f"not a duration: {text!r} (ISO durations take weeks, days, hours, minutes and "
            "seconds; months and years have no fixed length)"
        )
    compact = _COMPACT_DURATION_RE.fullmatch(value)
    if not value or compact is None or not any(compact.groups()):
        raise ValueError(f"not a duration: {text!r} ({_DURATION_HINT})")
    days, hours, minutes, seconds = (int(g or 0) for g in compact.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _parse_datetime(value: Any) -> datetime | None:
    """A datetime from a datetime, a date (midnight) or an ISO string; tzinfo kept as is."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str) and not _NUMBER_RE.fullmatch(value.strip()):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive value is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _local_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive wall-clock time in ``zone`` as UTC: the first of two, or the change for none."""
    moment = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) == local:
        return moment
    # Skipped by a forward change: fold=1 reads it with the later offset (an instant before
    # the change), fold=0 with the earlier one (after it); bisect for the change itself.
    target = moment.astimezone(zone).utcoffset()
    low = int(local.replace(tzinfo=zone, fold=1).timestamp())
    high = int(moment.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


# --- schedules -------------------------------------------------------------------------------


def _fire_times(trigger: Trigger, after: datetime) -> Iterator[datetime]:
    """The due times strictly after ``after``, increasing, as aware UTC."""
    after = _as_utc(after)
    if trigger.at is not None:
        if _as_utc(trigger.at) > after:
            yield _as_utc(trigger.at)
        return
    if trigger.cron is None:
        return
    zone = ZoneInfo(trigger.timezone)
    # Reading ``after`` without its fold gives a wall-clock time at or before it, so the scan
    # cannot start past the answer; wall-clock to UTC never goes backwards.
    start = after.astimezone(zone).replace(tzinfo=None)
    schedule = croniter(trigger.cron, start)
    last = after
    while True:
        try:
            local = schedule.get_next(datetime)
        except CroniterBadDateError:
            return
        moment = _local_to_utc(local, zone)
        if moment > last:
            last = moment
            yield moment


def next_fire_after(trigger: Trigger, after: datetime) -> datetime | None:
    """The first due time strictly after ``after`` (naive values are read as UTC), or None."""
    return next(_fire_times(trigger, after), None)


def due_fire_times(
    trigger: Trigger,
    next_fire_at: datetime,
    now: datetime,
    *,
    max_runs: int = 100,
    grace_seconds: int = 300,
) -> tuple[list[datetime], datetime | None]:
    """The due times to fire now (per ``on_missed``) and the next due time to store.

    ``next_fire_at`` is the stored due time; every due time from it up to ``now`` is owed.
    ``run_all`` fires the latest ``max_runs`` of them, ``run_once`` the latest, ``skip`` the
    latest only when it is at most ``grace_seconds`` old.
    """
    if max_runs < 1:
        raise ValueError("max_runs must be at least 1")
    next_fire_at, now = _as_utc(next_fire_at), _as_utc(now)
    if next_fire_at > now:
        return [], next_fire_at
    limit = max_runs if trigger.on_missed == "run_all" else 1
    due = _latest_due(trigger, next_fire_at, now, limit)
    if trigger.on_missed == "skip" and (now - due[-1]).total_seconds() > grace_seconds:
        due = []
    return due, next_fire_after(trigger, now)


def _latest_due(trigger: Trigger, first: datetime, now: datetime, limit: int) -> list[datetime]:
    """The latest ``limit`` due times in ``[first, now]``, looking back only as far as needed."""
    window = timedelta(hours=1)
    while True:
        lower = now - window
        found: deque[datetime] = deque(maxlen=limit)
        if lower <= first:
            found.append(first)
            lower = first
        for moment in _fire_times(trigger, lower):
            if moment > now:
                break
            found.append(moment)
        if lower == first or len(found) >= limit:
            return list(found)
        window *= 2


# --- conditions ------------------------------------------------------------------------------


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing.MISSING
"""What :func:`resolve_path` returns for a path that leads nowhere (a None value is a value)."""


def resolve_path(context: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path through nested mappings, or :data:`MISSING`."""
    value: Any = context
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def matches_event(pattern: str, event_type: str) -> bool:
    """Whether an event type matches a trigger's pattern (``*``, ``?``, ``[...]``; case counts)."""
    return fnmatch.fnmatchcase(event_type, pattern)


def evaluate_conditions(
    conditions: Sequence[Condition], context: Mapping[str, Any], now: datetime
) -> bool:
    """Whether a record's context meets every condition (``now`` anchors ``since 7d``)."""
    return all(_holds(condition, context, _as_utc(now)) for condition in conditions)


def _is_blank(value: Any) -> bool:
    return value is MISSING or value is None or value == ""


def _holds(condition: Condition, context: Mapping[str, Any], now: datetime) -> bool:
    actual = resolve_path(context, condition.field)
    op, expected = condition.op, condition.value
    if op == "missing":
        return _is_blank(actual)
    if op == "exists":
        return not _is_blank(actual)
    if actual is MISSING:
        return op in ("ne", "not_in")
    if op in ("eq", "ne"):
        return _equal(actual, expected) == (op == "eq")
    if op in ("in", "not_in"):
        found = any(_equal(actual, item) for item in expected or ())
        return found == (op == "in")
    if op in ("gt", "gte", "lt", "lte"):
        order = _compare(actual, expected)
        if order is None:
            return False
        return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[op]
    if op == "contains":
        if isinstance(actual, str):
            return str(expected) in actual
        if isinstance(actual, list | tuple | set | frozenset):
            return any(_equal(item, expected) for item in actual)
        return False
    if op == "starts_with":
        if isinstance(actual, bool) or not isinstance(actual, str | int):
            return False
        return str(actual).startswith(str(expected))
    if op in ("since", "before"):
        moment, threshold = _moment(actual), _threshold(expected, now)
        if moment is None or threshold is None:
            return False
        return moment >= threshold if op == "since" else moment < threshold
    raise ValueError(f"unknown condition op {op!r}")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip()):
        return float(value)
    return None


def _moment(value: Any) -> datetime | None:
    moment = _parse_datetime(value)
    return None if moment is None else _as_utc(moment)


def _threshold(expected: Any, now: datetime) -> datetime | None:
    moment = _moment(expected)
    if moment is not None:
        return moment
    try:
        seconds = parse_duration(str(expected))
    except ValueError:
        return None
    try:
        return now - timedelta(seconds=seconds)
    except OverflowError:  # further back than datetimes go: since the beginning of time
        return datetime.min.replace(tzinfo=UTC)


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return _truth(actual) is not None and _truth(actual) == _truth(expected)
    if isinstance(actual, int | float) or isinstance(expected, int | float):
        left, right = _number(actual), _number(expected)
        return left is not None and left == right
    if isinstance(actual, date) or isinstance(expected, date):
        left_moment, right_moment = _moment(actual), _moment(expected)
        return left_moment is not None and left_moment == right_moment
    return bool(actual == expected)


def _truth(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _compare(actual: Any, expected: Any) -> int | None:
    """-1, 0 or 1 comparing as numbers, else as datetimes, else as text; None if unorderable."""
    left: Any
    right: Any
    for convert in (_number, _moment):
        left, right = convert(actual), convert(expected)
        if left is not None and right is not None:
            return int(left > right) - int(left < right)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return None
    if isinstance(actual, str | int | float) and isinstance(expected, str | int | float):
        left, right = str(actual), str(expected)
        return int(left > right) - int(left < right)
    return None


# --- recipients ------------------------------------------------------------------------------


class _Ref(NamedTuple):
    path: str


def _parse_expression(text: str) -> tuple[str | _Ref, ...]:
    """Literal text and ``{path}`` references; ``{{`` and ``}}`` are literal braces."""
    parts: list[str | _Ref] = []
    literal: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char in "{}" and text.startswith(char * 2, index):
            literal.append(char)
            index += 2
        elif char == "}":
            raise ValueError(f"unmatched '}}' at position {index} (write '}}}}' for a brace)")
        elif char == "{":
            end = text.find("}", index)
            if end == -1:
                raise ValueError(f"unclosed '{{' at position {index} (write '{{{{' for a brace)")
            path = text[index + 1 : end].strip()
            if not _PATH_RE.fullmatch(path):
                raise ValueError(f"{{{path}}} is not a field path such as {{contact.name}}")
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_Ref(path))
            index = end + 1
        else:
            literal.append(char)
            index += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _text_of(value: Any) -> str:
    if _is_blank(value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _evaluate(expression: Any, context: Mapping[str, Any], key: str) -> Any:
    if not isinstance(expression, str):
        return expression
    try:
        parts = _parse_expression(expression)
    except ValueError as exc:
        raise MappingError(key, str(exc)) from exc
    if len(parts) == 1 and isinstance(parts[0], _Ref):
        return resolve_path(context, parts[0].path)
    return "".join(
        _text_of(resolve_path(context, p.path)) if isinstance(p, _Ref) else p for p in parts
    )


def _optin(value: Any, expression: Any) -> bool:
    if isinstance(value, bool):
        return value
    if _is_blank(value):
        return False
    word = str(value).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise MappingError("optin", f"{value!r} from {expression} is not yes or no")


def _default_recipient(channel_type: str, context: Mapping[str, Any]) -> dict[str, Any]:
    channel = "whatsapp" if channel_type == "whatsapp" else "sms"
    items = {"CustomerName": "{contact.name}"}
    if not _is_blank(resolve_path(context, "case")):
        items |= {
            "CaseName": "{case.title}",
            "CaseNumber": "{case.number}",
            "regardingobjectid": "{case.id}",
            "entityrelationshipname": _CASE_RELATIONSHIP,
        }
    return {
        "tocontactid": f"{{contact.{_PHONE_FIELDS[channel]}}}",
        "optin": f"{{contact.consent.{channel}}}",
        "locale": "{contact.preferred_language}",
        "timezone": "{contact.time_zone}",
        "contextitems": items,
    }


def render_recipient(
    recipient: Mapping[str, Any], context: Mapping[str, Any], channel_type: str
) -> dict[str, Any]:
    """A record's context as a send request's contact item; :class:`MappingError` if it can't."""
    defaults = _default_recipient(channel_type, context)
    spec = {**defaults, **recipient}
    target_expr = spec["tocontactid"]
    target = _evaluate(target_expr, context, "tocontactid")
    if isinstance(target, str):
        target = target.strip()
    if _is_blank(target):
        named = _named(target_expr, "tocontactid")
        raise MappingError("tocontactid", f"no phone number ({named} is empty)")
    if isinstance(target, bool) or not isinstance(target, str | int):
        raise MappingError("tocontactid", f"{target!r} from {target_expr} is not a phone number")
    item: dict[str, Any] = {
        "tocontactid": str(target),
        "optin": _optin(_evaluate(spec["optin"], context, "optin"), spec["optin"]),
    }
    for key in ("locale", "timezone"):
        value = _text_of(_evaluate(spec[key], context, key)).strip()
        if value:
            item[key] = value
    items: dict[str, Any] = {}
    for name, expression in {**defaults["contextitems"], **(spec["contextitems"] or {})}.items():
        value = _evaluate(expression, context, f"contextitems.{name}")
        if _is_blank(value):
            continue
        if isinstance(value, date):
            value = value.isoformat()
        elif not isinstance(value, str | int | float):
            message = f"{expression} is not text, a number or true/false"
            raise MappingError(f"contextitems.{name}", message)
        items[name] = value
    item["contextitems"] = items
    if spec.get("sendastemplate") is True:
        item["sendastemplate"] = True
    if spec.get("templateparameters") is not None:
        item["templateparameters"] = {
            str(name): _text_of(_evaluate(expression, context, f"templateparameters.{name}"))
            for name, expression in spec["templateparameters"].items()
        }
    return item


def _named(expression: Any, key: str) -> str:
    """How an error names where an empty value came from: its path, or the expression."""
    if isinstance(expression, str):
        try:
            parts = _parse_expression(expression)
        except ValueError:
            return expression
        if len(parts) == 1 and isinstance(parts[0], _Ref):
            return parts[0].path
        return expression or key
    return key
