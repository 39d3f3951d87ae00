"""Durations as flows write them: ``90s``, ``15m``, ``24h``, ``7d``, ``1d12h`` or ISO ``PT24H``.

A trigger's ``delay`` and a ``since``/``before`` condition's look-back are durations.
:func:`parse_duration` reads one as whole seconds.
"""

from __future__ import annotations

import re
from typing import Final

from outbound.texts import N_

__all__ = ["DURATION_HINT", "parse_duration"]

DURATION_HINT: Final = N_("use e.g. 90s, 15m, 24h, 7d, 1d12h or PT24H")
"""The forms of a duration, for messages that ask for one."""

_COMPACT_DURATION_RE: Final = re.compile(
    r"(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?", re.IGNORECASE
)
_ISO_DURATION_RE: Final = re.compile(
    r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", re.IGNORECASE
)


def parse_duration(text: str) -> int:
    """Seconds in ``90s``, ``15m``, ``24h``, ``7d``, ``1d12h`` or ISO-8601 ``PT24H``/``P1D``."""
    value = text.strip()
    iso = _ISO_DURATION_RE.fullmatch(value)
    if iso is not None and value.upper() not in ("P", "PT") and not value.upper().endswith("T"):
        weeks, days, hours, minutes, seconds = (int(g or 0) for g in iso.groups())
        return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds
    if value[:1].upper() == "P":
        raise ValueError(
            N_(
                "not a duration: %(text)r (ISO durations take weeks, days, hours, minutes and "
                "seconds; months and years have no fixed length)",
                text=text,
            )
        )
    compact = _COMPACT_DURATION_RE.fullmatch(value)
    if not value or compact is None or not any(compact.groups()):
        raise ValueError(N_("not a duration: %(text)r (%(hint)s)", text=text, hint=DURATION_HINT))
    days, hours, minutes, seconds = (int(g or 0) for g in compact.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
