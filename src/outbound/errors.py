"""Exceptions raised by outbound, under one root.

::

    OutboundError
    ├── SettingsError                    a setting has a bad value (names the variable)
    ├── SecretKeyError                   the secret key is malformed or opens no credentials
    ├── DomainError                      a rule of the domain refused an input
    │   ├── TemplateSyntaxError          malformed template text (has .position)
    │   ├── MissingPlaceholderError      a placeholder had no value (has .key)
    │   ├── InvalidLocaleError           not BCP-47 nor a known Windows LCID
    │   ├── InvalidNumberError           not a valid phone number (has .reason)
    │   ├── MappingError                 a record cannot become a contact item (has .field)
    │   ├── FlowDefinitionError          a flow document has faults (has .errors: FieldError)
    │   ├── InvalidTransitionError       an action not allowed in a conversation's state
    │   ├── InvalidRoutingRuleError      a routing rule has a fault (has .index, .field)
    │   └── UnsafeWebhookAddressError    a webhook endpoint resolves to a non-public address
    ├── RequestError                     the API refuses a request (mapped to HTTP in one place)
    │   ├── InvalidRequestError  422     names the offending field
    │   │   └── ImportInputError         a CSV cannot be imported at all
    │   ├── AuthenticationError  401
    │   ├── PermissionDeniedError 403
    │   ├── NotFoundError        404
    │   ├── ConflictError        409
    │   ├── PayloadTooLargeError 413
    │   ├── UnsupportedMediaTypeError 415
    │   └── RateLimitedError     429     has .retry_after (seconds)
    ├── WebhookSignatureError            a webhook call's signature or token is wrong: store nothing
    └── ProviderError                    a provider call did not succeed
        ├── TransientProviderError       retry later (has .retry_after, optional)
        └── PermanentProviderError       never retry (has .code)
            ├── CredentialsError         the provider refused the channel's credentials
            ├── RecipientOptedOutError   the recipient withdrew consent at the provider
            └── UnknownProviderMessageError  a status check named a message the provider
                                         does not know (404)

Only :class:`RequestError` carries an HTTP status: ``outbound.web.errors.error_response`` maps
every error to its HTTP answer (a flow document's faults to 422), so domain errors stay free of
the web. This module imports
nothing but the standard library: the domain imports its errors from here.

Whether a failed send is retried is carried by the exception type, never decided by
catching everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from outbound.texts import N_

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "CredentialsError",
    "DomainError",
    "FieldError",
    "FlowDefinitionError",
    "ImportInputError",
    "InvalidLocaleError",
    "InvalidNumberError",
    "InvalidRequestError",
    "InvalidRoutingRuleError",
    "InvalidTransitionError",
    "MappingError",
    "MissingPlaceholderError",
    "NotFoundError",
    "OutboundError",
    "PayloadTooLargeError",
    "PermanentProviderError",
    "PermissionDeniedError",
    "ProviderError",
    "RateLimitedError",
    "RecipientOptedOutError",
    "RequestError",
    "SecretKeyError",
    "SettingsError",
    "TemplateSyntaxError",
    "TransientProviderError",
    "UnknownProviderMessageError",
    "UnsafeWebhookAddressError",
    "UnsupportedMediaTypeError",
    "WebhookSignatureError",
    "message_of",
]


class OutboundError(Exception):
    """Root of every exception outbound raises on purpose."""


class SettingsError(OutboundError):
    """A setting has a bad value; the message names the variable."""


class SecretKeyError(OutboundError):
    """The configured secret key is malformed or does not open stored credentials."""


class DomainError(OutboundError):
    """A domain rule refused an input."""


class TemplateSyntaxError(DomainError):
    """Template text is malformed; ``position`` is the 0-based index of the fault."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(
            N_("%(reason)s at position %(position)s", reason=message, position=position)
        )
        self.reason = message
        self.position = position


class MissingPlaceholderError(DomainError):
    """A placeholder of the template has no value."""

    def __init__(self, key: str) -> None:
        super().__init__(f"missing_placeholder: {key}")
        self.key = key


class InvalidLocaleError(DomainError):
    """A locale is neither a BCP-47 tag nor a known Windows LCID."""

    def __init__(self, value: object) -> None:
        super().__init__(N_("invalid locale: %(locale)r", locale=value))
        self.value = value


class InvalidNumberError(DomainError):
    """A phone number cannot be normalised to a valid E.164 number."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MappingError(DomainError):
    """A record cannot become a contact item; ``field`` names the recipient key at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(N_("%(field)s: %(message)s", field=field, message=message))
        self.field = field
        self.message = message


class FieldError(NamedTuple):
    """One fault of a flow document: a dotted field path, its 1-based line, and why."""

    field: str
    line: int | None
    message: str


def _describe(error: FieldError) -> str:
    where: str = error.field
    if error.line is not None:
        where = N_("%(field)s (line %(line)s)", field=error.field, line=error.line)
    return N_("%(field)s: %(message)s", field=where, message=error.message)


class FlowDefinitionError(DomainError):
    """A flow document has faults; ``errors`` lists all of them, the first in the message."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        if not errors:
            raise ValueError(N_("FlowDefinitionError needs at least one FieldError"))
        message = _describe(errors[0])
        if len(errors) > 1:
            message = N_("%(error)s (and %(more)s more)", error=message, more=len(errors) - 1)
        super().__init__(message)
        self.errors = list(errors)
        self.field = errors[0].field


class InvalidTransitionError(DomainError):
    """An action is not allowed in a conversation's current state; names both, and what is."""

    def __init__(self, state: str, action: str, allowed: Iterable[str] = ()) -> None:
        choices = ", ".join(sorted(allowed)) or N_("none")
        super().__init__(
            N_(
                "cannot %(action)s a conversation that is %(state)s "
                "(allowed when %(state)s: %(allowed)s)",
                action=action,
                state=state,
                allowed=choices,
            )
        )
        self.state = state
        self.action = action


class InvalidRoutingRuleError(DomainError):
    """A routing rule cannot be used; names the condition (its index) or the rule's attribute.

    ``index`` is the condition's 0-based position (None for the rule's own attributes),
    ``field`` the condition's field or the attribute's name, ``reason`` what is wrong.
    """

    def __init__(self, reason: str, *, index: int | None = None, field: str | None = None) -> None:
        where = f"conditions[{index}]" if index is not None else ""
        if field is not None:
            where = f"{where} ({field})" if where else field
        super().__init__(
            N_("%(field)s: %(message)s", field=where, message=reason) if where else reason
        )
        self.index = index
        self.field = field
        self.reason = reason


class UnsafeWebhookAddressError(DomainError):
    """A webhook endpoint's host resolves to a loopback, private, link-local or other
    non-public address that the operator did not allow."""


def message_of(exc: BaseException) -> str:
    """An exception's message, still a :class:`~outbound.texts.Text` when it was written as one
    (``str(exc)`` is a plain string: the console could not say it in the reader's language)."""
    if len(exc.args) == 1 and isinstance(exc.args[0], str):
        message: str = exc.args[0]
        return message
    return str(exc)


class RequestError(OutboundError):
    """The API refuses a request; the web layer maps each subclass to one HTTP status."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}
        if code is not None:
            self.code = code


class InvalidRequestError(RequestError):
    """422: the request is well-formed but a field's value is not acceptable."""

    status_code = 422
    code = "invalid_request"


class ImportInputError(InvalidRequestError):
    """The CSV cannot be imported at all: no usable header, or a line too long to be a row."""


class AuthenticationError(RequestError):
    """401: the API key is missing or unknown."""

    status_code = 401
    code = "unauthenticated"


class PermissionDeniedError(RequestError):
    """403: the key's role may not do this."""

    status_code = 403
    code = "forbidden"


class NotFoundError(RequestError):
    """404: no such object in the caller's organisation."""

    status_code = 404
    code = "not_found"


class ConflictError(RequestError):
    """409: the request conflicts with the current state."""

    status_code = 409
    code = "conflict"


class PayloadTooLargeError(RequestError):
    """413: the body is larger than the service takes (nothing of it was stored)."""

    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(RequestError):
    """415: the body is not in a format this endpoint reads (names the Content-Type)."""

    status_code = 415
    code = "unsupported_media_type"


class RateLimitedError(RequestError):
    """429: a quota is exhausted; retry after ``retry_after`` seconds."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WebhookSignatureError(OutboundError):
    """A webhook call's signature or token is missing or wrong: nothing of it may be stored."""


class ProviderError(OutboundError):
    """A provider call did not succeed."""

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retry_after = retry_after


class TransientProviderError(ProviderError):
    """The send may succeed later (429, 5xx, timeouts, connection errors)."""


class PermanentProviderError(ProviderError):
    """The send will never succeed as it is (invalid number, bad credentials, ...)."""


class CredentialsError(PermanentProviderError):
    """The provider refused the channel's credentials: the channel stops until they change."""


class RecipientOptedOutError(PermanentProviderError):
    """The recipient withdrew consent at the provider (Twilio 21610, a STOP to this sender)."""


class UnknownProviderMessageError(PermanentProviderError):
    """A status check asked about a message the provider does not know (it answered 404)."""
