"""Presence: what an agent says about themselves, and whether they can be given work.

An agent declares a status (:class:`Presence`). Only ``available`` is assignable: ``busy``,
``dnd`` (do not disturb) and ``away`` keep the conversations the agent already holds but stop new
ones from being offered or assigned, and ``offline`` is the same while signed out. A declared
status is trusted only while the agent is seen: any request they make, or a heartbeat, within
:data:`DEFAULT_PRESENCE_TIMEOUT`. An agent who closed the laptop without signing out is offline
one minute later, so nothing is assigned to someone who is not there.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from outbound.domain.timezones import as_utc

__all__ = [
    "ASSIGNABLE_PRESENCES",
    "DEFAULT_PRESENCE_TIMEOUT",
    "Presence",
    "effective_presence",
    "is_online",
]


class Presence(StrEnum):
    """The status an agent declares."""

    AVAILABLE = "available"
    BUSY = "busy"
    DND = "dnd"
    AWAY = "away"
    OFFLINE = "offline"


ASSIGNABLE_PRESENCES: Final = frozenset({Presence.AVAILABLE})
"""Declared statuses under which new conversations may be offered or assigned."""

DEFAULT_PRESENCE_TIMEOUT: Final = timedelta(seconds=60)
"""How long a declared status is trusted after the agent was last seen."""


def is_online(
    status: Presence | str,
    last_seen: datetime | None,
    now: datetime,
    timeout: timedelta = DEFAULT_PRESENCE_TIMEOUT,
) -> bool:
    """Whether an agent may be given new conversations now.

    True only when the declared ``status`` is ``available`` and the agent was seen within
    ``timeout`` of ``now``. ``busy``, ``dnd`` and ``away`` are not assignable: the agent is there
    but asked not to get more work. An agent never seen (``last_seen`` None) is not online. A
    ``last_seen`` after ``now`` (clocks of two processes a little apart) counts as just seen.
    Naive datetimes are read as UTC. :class:`ValueError` for an unknown status.
    """
    if Presence(status) not in ASSIGNABLE_PRESENCES:
        return False
    return _seen_within(last_seen, now, timeout)


def effective_presence(
    status: Presence | str,
    last_seen: datetime | None,
    now: datetime,
    timeout: timedelta = DEFAULT_PRESENCE_TIMEOUT,
) -> Presence:
    """The status to show and count: the declared one while seen, else ``offline``.

    Supervisors' views and the "agents by presence" metric use it, so that an agent who
    vanished without signing out does not show as available.
    """
    declared = Presence(status)
    if declared is Presence.OFFLINE or not _seen_within(last_seen, now, timeout):
        return Presence.OFFLINE
    return declared


def _seen_within(last_seen: datetime | None, now: datetime, timeout: timedelta) -> bool:
    if last_seen is None:
        return False
    return as_utc(now) - as_utc(last_seen) <= timeout
