from __future__ import annotations

import pytest

from outbound.domain.consent import Keyword, classify_keyword


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", Keyword.OPT_OUT),
        ("stop", Keyword.OPT_OUT),
        ("  Stop!  ", Keyword.OPT_OUT),
        ("STOPALL", Keyword.OPT_OUT),
        ("unsubscribe", Keyword.OPT_OUT),
        ("Cancel", Keyword.OPT_OUT),
        ("END", Keyword.OPT_OUT),
        ("quit.", Keyword.OPT_OUT),
        ("ARRET", Keyword.OPT_OUT),
        ("Arrêt", Keyword.OPT_OUT),
        ("STOP SMS", Keyword.OPT_OUT),
        ("stop   sms", Keyword.OPT_OUT),
        ("START", Keyword.OPT_IN),
        ("unstop", Keyword.OPT_IN),
        ("YES", Keyword.OPT_IN),
        ("help", Keyword.HELP),
        ("HELP?", Keyword.HELP),
        ("INFO", Keyword.HELP),
        ("please stop", None),
        ("STOP PLEASE", None),
        ("stopping", None),
        ("", None),
        ("Thanks, see you tomorrow", None),
    ],
)
def test_classify_keyword(text: str, expected: Keyword | None) -> None:
    assert classify_keyword(text) is expected
