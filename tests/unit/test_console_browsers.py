"""The browser a console session is shown as, from its User-Agent header."""

from __future__ import annotations

import pytest

from outbound.console.routes.account import describe_browser


@pytest.mark.parametrize(
    ("user_agent", "shown"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36",
            "Chrome · Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
            "Edge · Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "Safari · iOS",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.0; rv:120.0) Gecko Firefox/120.0",
            "Firefox · macOS",
        ),
        ("curl/8.0", None),
        (None, None),
    ],
)
def test_a_user_agent_is_shown_as_browser_and_system(
    user_agent: str | None, shown: str | None
) -> None:
    assert describe_browser(user_agent) == shown
