"""The server's access log, without secrets or phone numbers.

uvicorn logs every request's path and query string as they came. Some carry what must not
reach a log: the webhook token of sandbox and ACS channels (``?token=``), and recipients'
numbers in look-ups (``/v1/messages?to=+336…``). :class:`AccessLogRedactor` rewrites the
request target of each access log record before any handler formats it: secret values become
``***`` and numbers are masked as the application's own log lines mask them
(:func:`~outbound.domain.numbers.mask_number`).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote, unquote_plus

from outbound.domain.numbers import mask_number

__all__ = [
    "NUMBER_PARAMETERS",
    "SECRET_PARAMETERS",
    "AccessLogRedactor",
    "redact_target",
]

REDACTED = "***"

SECRET_PARAMETERS = frozenset(
    {"token", "access_token", "api_key", "apikey", "key", "secret", "password", "signature", "sig"}
)
"""Query parameters whose value is always replaced by ``***``."""

NUMBER_PARAMETERS = frozenset(
    {
        "to",
        "from",
        "number",
        "recipient",
        "customer_number",
        "mobile_phone",
        "phone",
        "msisdn",
        "tocontactid",
    }
)
"""Query parameters whose value is always masked as a phone number, whatever its form."""

# "+" then a number as people write it (seven digits at least: shorter is no number). In a
# query string the "+" may come bare or percent-encoded (%2B); either way it is kept.
_E164_LIKE = re.compile(r"\+\d[\d\s().-]{5,}\d")
_SEGMENT_NUMBER = re.compile(r"(?:\+|%2[bB])\d[\d().-]{5,}\d")


def _mask(value: str) -> str:
    """Mask a raw (percent-encoded) value as a number, reading a bare "+" as itself."""
    return mask_number(unquote_plus(value.replace("+", "%2B")).replace(" ", ""))


def _redact_parameter(parameter: str) -> str:
    name, equals, value = parameter.partition("=")
    if not equals or not value:
        return parameter
    key = unquote_plus(name).strip().lower()
    if key in SECRET_PARAMETERS:
        return f"{name}={REDACTED}"
    if key in NUMBER_PARAMETERS or _E164_LIKE.fullmatch(unquote(value)):
        return f"{name}={_mask(value)}"
    return parameter


def redact_target(target: str) -> str:
    """``/v1/messages?to=%2B33612345678&token=abc`` → ``/v1/messages?to=+33*******78&token=***``.

    Path segments that are numbers (``/v1/consent/+33612345678``) are masked too. Anything
    else is left exactly as it came, so that the line still tells which request it was.
    """
    path, question, query = target.partition("?")
    if "+" in path or "%2" in path:
        path = _SEGMENT_NUMBER.sub(lambda match: _mask(match.group(0)), path)
    if question and query:
        query = "&".join(_redact_parameter(parameter) for parameter in query.split("&"))
    return path + question + query


class AccessLogRedactor(logging.Filter):
    """Redacts the request target of uvicorn's access log records (see the module docstring).

    Installed on the ``uvicorn.access`` logger by :func:`outbound.web.server.server_config`,
    so that every process the ``outbound`` command starts logs requests this way.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn logs '%s - "%s %s HTTP/%s" %d' with (client, method, target, version, status).
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact_target(args[2]), args[3], args[4])
        return True
