"""Consent keywords: STOP-style words withdraw consent, START restores it, HELP asks for help.

A keyword counts only when it is the whole message (case, accents, surrounding spaces and
trailing punctuation aside): "STOP" and "stop!" withdraw consent, "please stop" does not, as
with the carriers' own handling.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum

__all__ = [
    "CONSENT_WITHDRAWN",
    "HELP_WORDS",
    "OPT_IN_WORDS",
    "OPT_OUT_WORDS",
    "Keyword",
    "classify_keyword",
]

CONSENT_WITHDRAWN = "consent_withdrawn"
"""The reason of a message skipped because its number withdrew consent on its channel (by a
keyword, the provider's unsubscribed error or an admin), when it was accepted or later, before it
was sent. ``opted_out`` is another reason: the request itself said ``optin: false``."""


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET", "STOP SMS"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO", "AIDE"})

_TRAILING = " \t\r\n.!?;,:"


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.strip().strip(_TRAILING).upper().split())


def classify_keyword(text: str) -> Keyword | None:
    """The consent keyword a whole message is, if any."""
    word = _normalise(text)
    if word in OPT_OUT_WORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_WORDS:
        return Keyword.OPT_IN
    if word in HELP_WORDS:
        return Keyword.HELP
    return None
