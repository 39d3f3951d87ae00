"""Transport failures are told apart by whether the provider may have received the request."""

from __future__ import annotations

import socket

import pytest

from outbound.adapters.providers.http import HttpClient, HttpRequest
from outbound.domain.provider_errors import UNKNOWN_OUTCOME_CODES
from outbound.errors import TransientProviderError


async def test_a_refused_connection_sent_nothing() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = HttpClient(total_timeout=2, connect_timeout=1)
    try:
        with pytest.raises(TransientProviderError) as caught:
            await client.request(HttpRequest("POST", f"http://127.0.0.1:{port}/send", {}, b"x"))
    finally:
        await client.aclose()
    assert caught.value.code == "connection_error"
    assert caught.value.code not in UNKNOWN_OUTCOME_CODES
    assert {"timeout", "connection_lost", "interrupted"} == set(UNKNOWN_OUTCOME_CODES)
