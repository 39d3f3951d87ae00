"""The access log's request targets lose their secrets and numbers, and nothing else."""

from __future__ import annotations

import logging

import pytest

from outbound.web.access_log import AccessLogRedactor, redact_target


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/webhooks/ch-1?token=s3cret", "/webhooks/ch-1?token=***"),
        ("/v1/messages?to=%2B33612345678&limit=5", "/v1/messages?to=+33*******78&limit=5"),
        ("/v1/messages?recipient=+33612345678", "/v1/messages?recipient=+33*******78"),
        ("/v1/consent?number=0612345678", "/v1/consent?number=********78"),
        ("/v1/x?customer_number=%2B33612345678", "/v1/x?customer_number=+33*******78"),
        ("/v1/x?q=%2B33612345678", "/v1/x?q=+33*******78"),
        ("/v1/consent/+33612345678", "/v1/consent/+33*******78"),
        ("/v1/consent/%2B33612345678/history", "/v1/consent/+33*******78/history"),
        ("/v1/events?since=1700000000&cursor=abc", "/v1/events?since=1700000000&cursor=abc"),
        ("/v1/x?Token=a&API_KEY=b&flag", "/v1/x?Token=***&API_KEY=***&flag"),
        ("/healthz", "/healthz"),
    ],
)
def test_redact_target(target: str, expected: str) -> None:
    assert redact_target(target) == expected


def test_the_filter_rewrites_uvicorn_access_records() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/webhooks/ch-1?token=s3cret", "1.1", 200),
        None,
    )
    assert AccessLogRedactor().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "POST /webhooks/ch-1?token=*** HTTP/1.1" 200'


def test_the_filter_leaves_other_records_alone() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "%s", ("x",), None)
    assert AccessLogRedactor().filter(record)
    assert record.args == ("x",)
