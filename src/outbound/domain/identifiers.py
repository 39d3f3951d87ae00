"""Identifiers as other systems write them.

Dynamics 365 writes GUIDs in upper case and often in braces (``{6A75E67C-…}``); ours are lower
case UUIDs without braces. :func:`canonical_guid` reads either form as ours.
"""

from __future__ import annotations

__all__ = ["GUID_LENGTH", "canonical_guid"]

GUID_LENGTH = 36
"""``6a75e67c-0d3f-4c1e-9f7a-2b1c3d4e5f60``: 32 hex digits and 4 hyphens."""


def canonical_guid(value: str) -> str:
    """``value`` without surrounding blanks or one pair of braces, in lower case.

    Anything that is not a GUID is returned trimmed and lower-cased the same way, so that a
    lookup by it still finds nothing rather than failing differently.
    """
    text = value.strip()
    if len(text) >= 2 and text[0] == "{" and text[-1] == "}":
        text = text[1:-1].strip()
    return text.lower()
