"""Reports: messages by stage, reason, latency and cost; a funnel; agents' times.

Message counts come from the rollups (``message_rollups``, ``message_rollup_reasons``), one
row per organisation, accept hour (UTC) and dimensions, kept in the transaction of every
status change (:mod:`outbound.adapters.queue.rollups`), per UTC hour and per UTC day: a
30-day report reads 30 day rows and a few hour rows per combination of dimensions the
organisation uses, whatever the number of messages (:meth:`ReportQuery.parts`). The
counts that the rollups do not hold (consent changes, conversations opened, the funnel's
answered and closed, agents' times) are read from their own, much smaller, tables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    Channel,
    ConsentEvent,
    Conversation,
    Message,
    MessageRollup,
    MessageRollupReason,
)
from outbound.domain.provider_errors import error_meaning
from outbound.domain.reports import (
    COUNTERS,
    LATENCY_BUCKETS,
    Prices,
    hour_of,
    local_day,
    percentile,
)
from outbound.errors import InvalidRequestError
from outbound.texts import N_

__all__ = [
    "GROUPS",
    "ReportQuery",
    "ReportService",
    "parse_group_by",
    "parse_range",
    "parse_zone",
]

_ROLLUPS = MessageRollup.__table__
_REASONS = MessageRollupReason.__table__
_HIST = {
    kind: [f"{kind}_latency_{i}" for i in range(LATENCY_BUCKETS)] for kind in ("sent", "delivered")
}
_VALUES = (*COUNTERS, *_HIST["sent"], *_HIST["delivered"])

GROUPS: dict[str, str | None] = {
    "configuration": "configuration_id",
    "template": "template_id",
    "channel": "channel_id",
    "flow_run": "flow_run_id",
    "locale": "locale",
    "country": "country",
    "provider": None,
    "channel_type": None,
    "day": None,
    "hour": None,
}
"""What a report may be grouped by, and the rollup column each reads (None: derived)."""

MAX_RANGE = timedelta(days=400)

REPORT_WORK_MEM = "64MB"
"""PostgreSQL: the memory each sort or hash of a report's query may take (``work_mem``, 4 MB by
default), so that summing a month of hour rows per hour groups in memory instead of sorting
on disk."""


def _for_reports(session: Any) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))


def parse_zone(name: str | None) -> ZoneInfo:
    """The report's time zone (UTC when not given)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequestError(
            N_("unknown time zone %(name)r", name=name), field="time_zone"
        ) from exc


def _moment(text: str, zone: ZoneInfo, name: str) -> datetime:
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), zone)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequestError(
            N_("expected a date (2026-12-01) or a time (2026-12-01T10:00:00Z)"), field=name
        ) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def parse_range(
    since: str | None, until: str | None, zone: ZoneInfo, now: datetime
) -> tuple[datetime, datetime]:
    """``[since, until)`` in UTC, widened to whole hours; a date is local midnight.

    ``until`` defaults to now, ``since`` to 7 days before ``until``.
    """
    end = _moment(until, zone, "until") if until else now
    start = _moment(since, zone, "since") if since else end - timedelta(days=7)
    start = hour_of(start)
    end_hour = hour_of(end)
    end = end_hour if end_hour == end.astimezone(UTC) else end_hour + timedelta(hours=1)
    if end <= start:
        raise InvalidRequestError(N_("until must be after since"), field="until")
    if end - start > MAX_RANGE:
        raise InvalidRequestError(N_("a report covers at most 400 days"), field="since")
    return start, end


def parse_group_by(text: str | None) -> list[str]:
    """``configuration,day`` → ``["configuration", "day"]``, each checked."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    for name in names:
        if name not in GROUPS:
            raise InvalidRequestError(
                N_(
                    "cannot group by %(name)r; one of: %(groups)s",
                    name=name,
                    groups=", ".join(GROUPS),
                ),
                field="group_by",
            )
    if "day" in names and "hour" in names:
        raise InvalidRequestError(N_("group by day or by hour, not both"), field="group_by")
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class ReportQuery:
    """One report's range, grouping, zone and filters."""

    since: datetime
    until: datetime
    group_by: Sequence[str] = ()
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    filters: Mapping[str, str] = field(default_factory=dict)

    def where(self, table: sa.Table, org_id: str) -> list[sa.ColumnElement[bool]]:
        clauses = [table.c.org_id == org_id]
        clauses.extend(table.c[name] == value for name, value in self.filters.items())
        return clauses

    def parts(self) -> list[tuple[str, list[tuple[datetime, str, int]]]]:
        """Which rollup rows make the report: per period ("day", "hour"), the rows' start
        times, each with the label of the group it adds to (its local day or hour, or "")
        and a sign.

        Whole UTC days come from the day rows; the hours at the range's edges from the hour
        rows. By local day, a UTC day is added to the local day that holds its noon, and
        each of its hours that falls on another local day is taken back from that day (-1)
        and given to its own (+1): one or two hour rows per day and combination in most
        zones, instead of 24.
        """
        by_day = "day" in self.group_by
        if "hour" in self.group_by:
            hours = []
            hour = self.since
            while hour < self.until:
                hours.append((hour, hour.astimezone(self.zone).isoformat(), 1))
                hour += timedelta(hours=1)
            return [("hour", hours)]
        days: list[tuple[datetime, str, int]] = []
        hours = []
        hour = self.since
        while hour < self.until:
            whole_day = hour.hour == 0 and hour + timedelta(days=1) <= self.until
            if whole_day:
                label = local_day(hour + timedelta(hours=12), self.zone).isoformat()
                days.append((hour, label if by_day else "", 1))
                if by_day:
                    for h in range(24):
                        moment = hour + timedelta(hours=h)
                        own = local_day(moment, self.zone).isoformat()
                        if own != label:
                            hours += [(moment, own, 1), (moment, label, -1)]
                hour += timedelta(days=1)
            else:
                hours.append((hour, local_day(hour, self.zone).isoformat() if by_day else "", 1))
                hour += timedelta(hours=1)
        return [(period, rows) for period, rows in (("day", days), ("hour", hours)) if rows]


@dataclass
class _Group:
    values: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_VALUES, 0))
    reasons: dict[str, dict[str, int]] = field(
        default_factory=lambda: {"skipped": {}, "rejected": {}}
    )
    failed: dict[tuple[str, str], int] = field(default_factory=dict)
    cost: float = 0.0
    unpriced: int = 0

    def add(self, other: _Group) -> None:
        for name, n in other.values.items():
            self.values[name] += n
        for kind, codes in other.reasons.items():
            for code, n in codes.items():
                self.reasons[kind][code] = self.reasons[kind].get(code, 0) + n
        for key, n in other.failed.items():
            self.failed[key] = self.failed.get(key, 0) + n
        self.cost += other.cost
        self.unpriced += other.unpriced

    def empty(self) -> bool:
        """Nothing counted: what one part of a report added, another took back."""
        return (
            not any(self.values.values())
            and not any(self.failed.values())
            and not any(n for codes in self.reasons.values() for n in codes.values())
        )

    def out(self) -> dict[str, Any]:
        v = self.values
        sent, delivered = v["sent"], v["delivered"]
        return {
            "requested": v["requested"],
            "skipped": v["skipped"],
            "skipped_by_reason": _counted(self.reasons["skipped"]),
            "rejected": v["rejected"],
            "rejected_by_reason": _counted(self.reasons["rejected"]),
            "canceled": v["canceled"],
            "sent": sent,
            "delivered": delivered,
            "undelivered": v["undelivered"],
            "failed": v["failed"],
            "failed_by_code": [
                {
                    "provider": provider or None,
                    "code": code or None,
                    "count": n,
                    "meaning": error_meaning(provider, code),
                }
                for (provider, code), n in sorted(self.failed.items(), key=lambda i: -i[1])
                if n
            ],
            "delivery_rate": _rate(delivered, sent),
            "failovers": v["failovers"],
            "segments": v["segments"],
            "estimated_cost": round(self.cost, 6),
            "unpriced_segments": self.unpriced,
            "accept_to_sent": _percentiles([v[n] for n in _HIST["sent"]]),
            "accept_to_delivered": _percentiles([v[n] for n in _HIST["delivered"]]),
            "replied": v["replied"],
            "reply_rate": _rate(v["replied"], delivered),
        }


def _contiguous(starts: Sequence[datetime], step: timedelta) -> bool:
    return len(starts) == (starts[-1] - starts[0]) // step + 1


def _sums(
    session: Any,
    table: sa.Table,
    org_id: str,
    query: ReportQuery,
    period: str,
    entries: list[tuple[datetime, str, int]],
    keys: Sequence[sa.ColumnElement[Any]],
    values: Sequence[tuple[str, sa.ColumnElement[Any]]],
) -> Iterator[tuple[str, int, sa.Row[Any]]]:
    """The sums of ``values`` (name, expression of ``table``'s columns) over the rows of
    ``period`` that ``entries`` name, per ``keys`` and entry: ``(label, sign, row)``.

    Summed in the database, so that only the report's groups come back: over the whole
    range when no entry has a label (a report not by time), else per row start, each start
    then given to its entries' labels with their signs (an hour a zone moves to another day
    is added to one and taken from the other, read once).
    """
    starts = sorted({e[0] for e in entries})
    step = timedelta(days=1) if period == "day" else timedelta(hours=1)
    if len(starts) == (starts[-1] - starts[0]) // step + 1:
        # One range of the key (org, period, start): the database reads it in key order.
        when: list[sa.ColumnElement[bool]] = [
            table.c.starts_at >= starts[0],
            table.c.starts_at <= starts[-1],
        ]
    else:
        when = [table.c.starts_at.in_(starts)]
    where = [*query.where(table, org_id), table.c.period == period, *when]
    sums = [sa.func.sum(expression).label(name) for name, expression in values]
    if all(label == "" and sign == 1 for _, label, sign in entries):
        stmt = sa.select(*keys, *sums).where(*where).group_by(*keys)
        for row in session.execute(stmt):
            yield "", 1, row
        return
    given: dict[datetime, list[tuple[str, int]]] = {}
    for start, label, sign in entries:
        given.setdefault(start, []).append((label, sign))
    start_column = table.c.starts_at.label("_start")
    stmt = sa.select(*keys, *sums, start_column).where(*where).group_by(*keys, table.c.starts_at)
    for row in session.execute(stmt):
        for label, sign in given[row._mapping["_start"]]:
            yield label, sign, row


def _by_channel(
    table: sa.Table, channels: Mapping[str, tuple[str, str]], index: int
) -> sa.ColumnElement[Any]:
    """The provider (``index`` 0) or type (1) of each row's channel; NULL for a channel the
    organisation no longer has."""
    if not channels:
        return sa.null()
    return sa.case(
        {cid: sa.literal(values[index]) for cid, values in channels.items()},
        value=table.c.channel_id,
    )


def _price(
    table: sa.Table, channels: Mapping[str, tuple[str, str]], prices: Prices
) -> sa.ColumnElement[Any]:
    """The price of one segment of each row (:func:`price_of` of its channel's type and its
    country); NULL when unpriced."""
    by_type: dict[str, list[str]] = {}
    for channel_id, (_, channel_type) in channels.items():
        by_type.setdefault(channel_type, []).append(channel_id)
    whens = []
    for channel_type, ids in sorted(by_type.items()):
        default = prices.get((channel_type, "*"))
        countries = {
            country: sa.literal(price, sa.Float)
            for (kind, country), price in prices.items()
            if kind == channel_type and country != "*"
        }
        otherwise: sa.ColumnElement[Any] = (
            sa.null() if default is None else sa.literal(default, sa.Float)
        )
        price: sa.ColumnElement[Any]
        if countries:
            price = sa.case(countries, value=sa.func.upper(table.c.country), else_=otherwise)
        elif default is not None:
            price = otherwise
        else:
            continue
        whens.append((table.c.channel_id.in_(sorted(ids)), price))
    if not whens:
        return sa.null()
    return sa.case(*whens)


def _counted(codes: Mapping[str, int]) -> dict[str, int]:
    """The codes with a count, in order (a code one part added and another took back has 0)."""
    return {code: n for code, n in sorted(codes.items()) if n}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _percentiles(histogram: list[int]) -> dict[str, float | None]:
    return {"p50": percentile(histogram, 0.5), "p95": percentile(histogram, 0.95)}


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p50": None, "p95": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 3)

    return {"mean": round(sum(ordered) / len(ordered), 3), "p50": at(0.5), "p95": at(0.95)}


class ReportService:
    """Reads reports; writes nothing."""

    def __init__(self, db: Database, *, prices: Prices | None = None) -> None:
        self._db = db
        self._prices = dict(prices or {})

    # --- messages ---------------------------------------------------------------------

    def messages(self, org_id: str, query: ReportQuery) -> dict[str, Any]:
        """Messages accepted in the range, per group, and their totals."""
        groups: dict[tuple[Any, ...], _Group] = {}
        with self._db.read() as session:
            _for_reports(session)
            channels = {
                row.id: (row.provider, row.type)
                for row in session.execute(
                    sa.select(Channel.id, Channel.provider, Channel.type).where(
                        Channel.org_id == org_id
                    )
                )
            }
            keys = _keys(_ROLLUPS, query, channels)
            price = _price(_ROLLUPS, channels, self._prices)
            segments = _ROLLUPS.c.segments
            values = [
                *((name, _ROLLUPS.c[name]) for name in _VALUES),
                ("_cost", segments * price),
                ("_unpriced", sa.case((price.is_(None), segments), else_=0)),
            ]
            first, last = len(keys), len(keys) + len(_VALUES)  # where the values are
            reason_keys = [
                *_keys(_REASONS, query, channels),
                _REASONS.c.kind,
                _REASONS.c.code,
                sa.case(
                    (_REASONS.c.kind == "failed", _by_channel(_REASONS, channels, 0)),
                    else_=sa.literal(""),
                ).label("_provider"),
            ]
            for period, entries in query.parts():
                for label, sign, row in _sums(
                    session, _ROLLUPS, org_id, query, period, entries, keys, values
                ):
                    group = _group(groups, _key(row._mapping, query.group_by, label))
                    counted = group.values
                    # By position, and only what is not 0 (most latency buckets are): this
                    # loop runs for every summed row.
                    for name, n in zip(_VALUES, row[first:last], strict=True):
                        if n:
                            counted[name] += sign * int(n)
                    cost, unpriced = row[last : last + 2]
                    group.cost += sign * float(cost or 0)
                    group.unpriced += sign * int(unpriced or 0)
                for label, sign, row in _sums(
                    session,
                    _REASONS,
                    org_id,
                    query,
                    period,
                    entries,
                    reason_keys,
                    [("count", _REASONS.c.count)],
                ):
                    reason = row._mapping
                    n = sign * int(reason["count"] or 0)
                    if not n:
                        continue
                    group = _group(groups, _key(reason, query.group_by, label))
                    if reason["kind"] == "failed":
                        key = (reason["_provider"] or "", reason["code"])
                        group.failed[key] = group.failed.get(key, 0) + n
                    else:
                        codes = group.reasons[reason["kind"]]
                        codes[reason["code"]] = codes.get(reason["code"], 0) + n
            extras = self._extras(session, org_id, query)
        totals = _Group()
        out_groups = []
        for key, group in sorted(groups.items(), key=lambda item: _sort_key(item[0])):
            totals.add(group)
            if group.empty():
                continue  # what one part added, another took back
            labels = (GROUPS[name] or name for name in query.group_by)
            out_groups.append({**dict(zip(labels, key, strict=True)), **group.out()})
        return {
            "since": query.since.isoformat(),
            "until": query.until.isoformat(),
            "time_zone": query.zone.key,
            "group_by": list(query.group_by),
            "group_keys": [GROUPS[name] or name for name in query.group_by],
            "groups": out_groups,
            "totals": {**totals.out(), **extras},
        }

    @staticmethod
    def _extras(session: Any, org_id: str, query: ReportQuery) -> dict[str, int]:
        """Counts by the time they happened: consent changes, conversations opened."""
        consent = dict(
            session.execute(
                sa.select(ConsentEvent.action, sa.func.count())
                .where(
                    ConsentEvent.org_id == org_id,
                    ConsentEvent.occurred_at >= query.since,
                    ConsentEvent.occurred_at < query.until,
                )
                .group_by(ConsentEvent.action)
            ).all()
        )
        opened = session.execute(
            sa.select(sa.func.count()).where(
                Conversation.org_id == org_id,
                Conversation.created_at >= query.since,
                Conversation.created_at < query.until,
            )
        ).scalar_one()
        return {
            "opt_outs": int(consent.get("opt_out", 0)),
            "opt_ins": int(consent.get("opt_in", 0)),
            "conversations_opened": int(opened),
        }

    # --- funnel -----------------------------------------------------------------------

    def funnel(self, org_id: str, query: ReportQuery, by: str) -> dict[str, Any]:
        """sent → delivered → replied → answered → closed, per configuration or flow run.

        The first three from the rollups; answered (an agent wrote back) and closed from the
        conversations the messages opened.
        """
        column = {"configuration": "configuration_id", "flow_run": "flow_run_id"}.get(by)
        if column is None:
            raise InvalidRequestError(N_("by configuration or flow_run"), field="by")
        stages: dict[str | None, dict[str, int]] = {}
        with self._db.read() as session:
            _for_reports(session)
            values = [(name, _ROLLUPS.c[name]) for name in ("sent", "delivered", "replied")]
            for period, entries in query.parts():
                for _, sign, row in _sums(
                    session, _ROLLUPS, org_id, query, period, entries, [_ROLLUPS.c[column]], values
                ):
                    summed = row._mapping
                    entry = stages.setdefault(
                        summed[column] or None,
                        {"sent": 0, "delivered": 0, "replied": 0, "answered": 0, "closed": 0},
                    )
                    for name in ("sent", "delivered", "replied"):
                        entry[name] += sign * int(summed[name] or 0)
            dimension = getattr(Message, column)
            answered = sa.func.count(sa.distinct(Message.id)).filter(
                Conversation.first_response_at.is_not(None)
            )
            closed = sa.func.count(sa.distinct(Message.id)).filter(Conversation.status == "closed")
            filters = [getattr(Message, k) == v for k, v in query.filters.items()]
            for counted in session.execute(
                sa.select(dimension, answered, closed)
                .join(Message, Message.id == Conversation.answered_message_id)
                .where(
                    Conversation.org_id == org_id,
                    Conversation.created_at >= query.since,
                    Message.org_id == org_id,
                    Message.created_at >= query.since,
                    Message.created_at < query.until,
                    *filters,
                )
                .group_by(dimension)
            ):
                entry = stages.setdefault(
                    counted[0] or None,
                    {"sent": 0, "delivered": 0, "replied": 0, "answered": 0, "closed": 0},
                )
                entry["answered"], entry["closed"] = int(counted[1]), int(counted[2])
        return {
            "since": query.since.isoformat(),
            "until": query.until.isoformat(),
            "by": by,
            "groups": [
                {by + "_id": key, **values}
                for key, values in sorted(stages.items(), key=lambda i: i[0] or "")
            ],
        }

    # --- agents -----------------------------------------------------------------------

    def agents(self, org_id: str, query: ReportQuery) -> dict[str, Any]:
        """Conversations opened in the range, by the agent who has them and by queue.

        Times in seconds from the conversation's opening: ``first_wait`` to its assignment,
        ``first_response`` to the agent's first answer, ``resolution`` to its closing.
        """
        with self._db.read() as session:
            rows = session.execute(
                sa.select(
                    Conversation.assigned_to,
                    Conversation.queue_id,
                    Conversation.created_at,
                    Conversation.assigned_at,
                    Conversation.first_response_at,
                    Conversation.closed_at,
                ).where(
                    Conversation.org_id == org_id,
                    Conversation.created_at >= query.since,
                    Conversation.created_at < query.until,
                )
            ).all()
        return {
            "since": query.since.isoformat(),
            "until": query.until.isoformat(),
            "agents": _agent_groups(rows, "assigned_to", "user_id"),
            "queues": _agent_groups(rows, "queue_id", "queue_id"),
        }


def _agent_groups(rows: Iterable[Any], attribute: str, name: str) -> list[dict[str, Any]]:
    groups: dict[str | None, dict[str, list[float]]] = {}
    for row in rows:
        group = groups.setdefault(
            getattr(row, attribute),
            {"all": [], "first_wait": [], "first_response": [], "resolution": []},
        )
        group["all"].append(1)
        for label, moment in (
            ("first_wait", row.assigned_at),
            ("first_response", row.first_response_at),
            ("resolution", row.closed_at),
        ):
            if moment is not None:
                group[label].append(max(0.0, (moment - row.created_at).total_seconds()))
    return [
        {
            name: key,
            "conversations": len(values["all"]),
            "answered": len(values["first_response"]),
            "closed": len(values["resolution"]),
            "first_wait": _stats(values["first_wait"]),
            "first_response": _stats(values["first_response"]),
            "resolution": _stats(values["resolution"]),
        }
        for key, values in sorted(groups.items(), key=lambda i: i[0] or "")
    ]


def _keys(
    table: sa.Table, query: ReportQuery, channels: Mapping[str, tuple[str, str]]
) -> list[sa.ColumnElement[Any]]:
    """What the rows are summed per: the grouping's dimensions (a provider or channel type
    from the row's channel); day and hour come from the parts' labels."""
    keys: list[sa.ColumnElement[Any]] = []
    for name in query.group_by:
        column = GROUPS[name]
        if column is not None:
            keys.append(table.c[column])
        elif name in ("provider", "channel_type"):
            index = 0 if name == "provider" else 1
            keys.append(_by_channel(table, channels, index).label(name))
    return keys


def _group(groups: dict[tuple[Any, ...], _Group], key: tuple[Any, ...]) -> _Group:
    """The group of ``key``, made when first met (not once per row, as ``setdefault`` would)."""
    group = groups.get(key)
    if group is None:
        group = groups[key] = _Group()
    return group


def _key(row: Mapping[Any, Any], group_by: Sequence[str], label: str) -> tuple[Any, ...]:
    """A summed row's group, in the grouping's order: its dimensions (None for none), and
    the part's label for day or hour."""
    return tuple(
        label if name in ("day", "hour") else (row[GROUPS[name] or name] or None)
        for name in group_by
    )


def _sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in key)
