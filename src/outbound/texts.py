"""Words for people, written in English, that the console says in the reader's language.

``N_("no queue %(id)r", id=queue_id)`` is the English sentence (``no queue 'q_1'``) wherever a
plain string is used: in the API's error answers, in logs, in ``str(exc)``. It also keeps its
catalog id (``"no queue %(id)r"``) and its values, so that the console looks the id up in the
reader's catalog and fills in the same values (``Translator.error``). Messages are gettext's
``python-format``: ``%(name)s`` and ``%(name)r`` placeholders, ``%%`` for a percent sign.

``make messages`` extracts every ``N_("…")`` of the package into the console's catalogs, and a
test fails while one has no French translation. This module imports nothing but the standard
library, so the domain and the errors can use it.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["N_", "Text"]


class Text(str):
    """A sentence in English that remembers its catalog id and values."""

    msgid: str
    values: Mapping[str, object]

    def __new__(cls, msgid: str, values: Mapping[str, object] | None = None) -> Text:
        values = dict(values or {})
        self = super().__new__(cls, msgid % values if values else msgid)
        self.msgid = msgid
        self.values = values
        return self

    def __getnewargs__(self) -> tuple[str, dict[str, object]]:  # type: ignore[override]
        return (self.msgid, dict(self.values))


def N_(message: str, /, **values: object) -> Text:
    """Mark ``message`` for the catalogs; with ``values`` it is filled in (``%(name)s``)."""
    return Text(message, values)
