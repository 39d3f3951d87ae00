"""Yes and no written as words: one reading for settings, CSV cells and flow mappings.

``true``/``false``, ``yes``/``no``, ``y``/``n``, ``on``/``off`` and ``1``/``0``, in any case
and with surrounding spaces: every place that reads a flag from text takes the same words.
"""

from __future__ import annotations

from typing import Final

from outbound.texts import N_

__all__ = ["FALSE_WORDS", "FLAG_HINT", "TRUE_WORDS", "parse_flag"]

TRUE_WORDS: Final = frozenset({"true", "yes", "y", "on", "1"})
"""The words for yes, in lower case."""

FALSE_WORDS: Final = frozenset({"false", "no", "n", "off", "0"})
"""The words for no, in lower case."""

FLAG_HINT: Final = N_("must be true or false (yes/no, on/off, 1/0)")
"""What is wrong with a word that is neither."""


def parse_flag(text: str) -> bool:
    """The flag a word says; :class:`ValueError` (:data:`FLAG_HINT`) for any other text."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(FLAG_HINT)
