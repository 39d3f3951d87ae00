"""What providers' error codes mean, as their documentation words it, for reports.

Twilio: twilio.com/docs/api/errors; TeleSign: the status codes of its SMS callbacks
(developer.telesign.com/enterprise/reference/smscallbacks). Codes the service gives itself
(``max_attempts_exceeded``…) are named here too. A code not listed has no meaning given.
"""

from __future__ import annotations

__all__ = ["INTERRUPTED", "UNKNOWN_OUTCOME_CODES", "error_meaning"]

# Transport failures after which the provider may have created the message: the request went
# out and no answer came back. Before such a message is sent again, providers that can be
# asked are (outbound.services.dispatch). A connection that could not be opened sent nothing.
# ``interrupted``: a message taken over from a worker that stopped while sending it, given
# back to the queue before it could be looked up; it is looked up when claimed again.
INTERRUPTED = "interrupted"
UNKNOWN_OUTCOME_CODES = ("timeout", "connection_lost", INTERRUPTED)

_TWILIO = {
    "21211": "Invalid 'To' phone number",
    "21408": "Permission to send to this region is not enabled",
    "21606": "The 'From' number is not a valid message-capable number for this destination",
    "21610": "The recipient replied STOP (unsubscribed)",
    "21611": "The 'From' number's queue holds more than 10 hours of messages",
    "21614": "'To' is not a mobile number",
    "21617": "The body exceeds 1,600 characters",
    "30001": "Queue overflow",
    "30002": "Account suspended",
    "30003": "Unreachable destination handset (off or out of coverage)",
    "30004": "Message blocked",
    "30005": "Unknown destination handset (unknown or inactive)",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered (carrier violation)",
    "30008": "Unknown error",
    "30034": "Message from an unregistered US 10DLC number",
    "63016": "WhatsApp free-form message outside the 24-hour window",
}
_TELESIGN = {
    "207": "Error delivering to handset, reason unknown",
    "210": "Temporary phone error",
    "211": "Permanent phone error",
    "220": "Network cannot route the message",
    "221": "Expired before delivery",
    "222": "SMS not supported",
    "229": "Blocked by your request",
    "230": "Blocked by TeleSign (global blocklist)",
    "231": "Invalid or unsupported content",
    "233": "Blocked: high risk score",
    "237": "Blocked country",
    "238": "Destination blocked by prefix",
    "250": "Final status unknown",
    "251": "Sent downstream, no handset confirmation",
}
_OURS = {
    "max_attempts_exceeded": "Every attempt allowed failed (transient provider errors)",
    "opted_out": "The recipient withdrew consent (the provider refused the send)",
    "timeout": "The provider did not answer in time (it may have accepted the message)",
    "connection_lost": "The connection closed before the provider answered (it may have "
    "accepted the message)",
    "interrupted": "The worker sending it stopped before the provider answered (it may have "
    "accepted the message)",
    "connection_error": "The provider could not be reached (nothing was sent)",
    "connect_timeout": "Connecting to the provider timed out (nothing was sent)",
    "": "No error code given",
}
_BY_PROVIDER = {"twilio": _TWILIO, "telesign": _TELESIGN}


def error_meaning(provider: str | None, code: str) -> str | None:
    """The documented meaning of ``code`` from ``provider``; ``None`` when unknown."""
    table = _BY_PROVIDER.get(provider or "", {})
    return table.get(code) or _OURS.get(code)
