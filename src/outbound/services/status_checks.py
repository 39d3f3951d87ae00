"""Status checks: a sent message whose final status never came is asked of its provider.

Twilio does not retry a status callback, and a report that arrives while the service is down
(or unreachable) is lost: the message would stay ``sent`` for ever. So a message still ``sent``
``status_check_after`` seconds after its send is looked up at its provider
(:class:`~outbound.adapters.providers.base.StatusLookup`: Twilio's Message resource,
TeleSign's status by reference id, the sandbox), and what is found goes through the status
path of the webhooks (:meth:`StatusService.apply_many
<outbound.services.statuses.StatusService.apply_many>`): transitions checked, a history row,
the rollups, the integrator's webhook events. No final status yet: it is asked again later,
each wait as long as the message's age (at most :data:`MAX_INTERVAL`), until
:data:`GIVE_UP_AFTER` after the send (GOV.UK Notify's limit too), when the checks end with a
history row that says so (the status stays ``sent``: none is invented). A provider that does
not know the message (404) ends them the same way. Providers without a look-up (ACS) are
never asked: their messages' checks end unasked.

Checks are claimed (:mod:`outbound.adapters.queue.status_checks`) so that two workers never
ask about the same message, and spread over the slots of each channel's rate (``rate`` per
second per channel, for all workers together). No transaction is open during a look-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from outbound.adapters.db.engine import Database
from outbound.adapters.metrics import Metrics
from outbound.adapters.providers.base import ChannelInfo, Provider, StatusLookup, StatusReport
from outbound.adapters.queue.send_context import load_channels
from outbound.adapters.queue.status_checks import DueCheck, StatusCheckQueue
from outbound.adapters.secrets import SecretBox
from outbound.clock import Clock
from outbound.config import DEFAULT_STATUS_CHECK_AFTER_SECONDS, DEFAULT_STATUS_CHECK_RATE
from outbound.domain.statuses import TERMINAL_STATUSES
from outbound.errors import ProviderError, UnknownProviderMessageError
from outbound.services.statuses import StatusService

__all__ = ["CHECK_BATCH", "GIVE_UP_AFTER", "MAX_INTERVAL", "StatusChecker"]

log = logging.getLogger(__name__)

GIVE_UP_AFTER = timedelta(hours=72)
"""After this long since its send, a message's status is no longer asked."""
MAX_INTERVAL = timedelta(hours=6)
"""The longest wait between two checks of one message."""
CHECK_BATCH = 100
# A claim takes the checks whose slot falls this soon; later ones wait for the next claim.
CLAIM_HORIZON = timedelta(seconds=10)
# A claimed check not recorded this long after its slot (its worker died) is due again.
CHECK_LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class _Answer:
    """What one look-up found: a final status, none yet, an error, or an unknown message."""

    result: str
    report: StatusReport | None = None
    detail: str | None = None


class StatusChecker:
    """Asks providers the status of sent messages whose final status did not come."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        clock: Clock,
        providers: Mapping[str, Provider],
        statuses: StatusService,
        *,
        after_seconds: float = DEFAULT_STATUS_CHECK_AFTER_SECONDS,
        rate: float = DEFAULT_STATUS_CHECK_RATE,
        batch_size: int = CHECK_BATCH,
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._secrets = secrets
        self._clock = clock
        self._lookups: dict[str, StatusLookup] = {
            name: provider
            for name, provider in providers.items()
            if isinstance(provider, StatusLookup)
        }
        self._statuses = statuses
        self._after = timedelta(seconds=after_seconds)
        self._rate = rate
        self._batch_size = batch_size
        self._metrics = metrics or Metrics()
        self._queue = StatusCheckQueue(db)

    @property
    def providers(self) -> frozenset[str]:
        """The providers whose messages are checked."""
        return frozenset(self._lookups)

    async def run_once(self) -> int:
        """Claim the checks due now (within the channels' rates), make them, record them;
        returns how many due messages were taken (checked, or their checks ended unasked)."""
        checks, ended = await asyncio.to_thread(
            self._queue.claim,
            now=self._clock.now(),
            limit=self._batch_size,
            providers=self.providers,
            rate=self._rate,
            horizon=CLAIM_HORIZON,
            lease=CHECK_LEASE,
        )
        for provider, count in ended.items():
            self._metrics.status_checks.labels(provider, "unsupported").inc(count)
        if not checks:
            # Messages whose checks ended unasked: more may be due behind them.
            return sum(ended.values())
        channels = await asyncio.to_thread(
            load_channels, self._db, self._secrets, {c.channel_id for c in checks}
        )
        results = await asyncio.gather(
            *(self._check(check, channels.get(check.channel_id)) for check in checks),
            return_exceptions=True,
        )
        answers = [self._answer(c, r) for c, r in zip(checks, results, strict=True)]
        # Shielded: a shutdown must not lose what the provider told.
        await asyncio.shield(asyncio.to_thread(self._record, checks, answers))
        return len(checks) + sum(ended.values())

    async def _check(self, check: DueCheck, channel: ChannelInfo | None) -> _Answer:
        if channel is None:
            return _Answer("unsupported", detail="the channel was deleted")
        wait = (check.slot - self._clock.now()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        lookup = self._lookups[check.provider]
        try:
            report = await lookup.fetch_status(channel, check.provider_message_id)
        except UnknownProviderMessageError as exc:
            return _Answer(
                "unknown", detail=f"{check.provider} does not know the message ({exc.code})"
            )
        except ProviderError as exc:
            log.info(
                "status check of message %s at %s failed: %s %s",
                check.message_id,
                check.provider,
                type(exc).__name__,
                exc.code,
                extra={"message_id": check.message_id, "provider": check.provider},
            )
            return _Answer("error", detail=f"{exc.code}: {exc.message}")
        if report is None or report.status not in TERMINAL_STATUSES:
            return _Answer("pending")
        return _Answer(report.status.value, report=report)

    @staticmethod
    def _answer(check: DueCheck, result: _Answer | BaseException) -> _Answer:
        if isinstance(result, _Answer):
            return result
        if isinstance(result, asyncio.CancelledError):
            raise result
        # A bug, not the provider's answer: logged, and the message is asked again later.
        log.error(
            "status check of message %s failed unexpectedly",
            check.message_id,
            exc_info=(type(result), result, result.__traceback__),
            extra={"message_id": check.message_id, "provider": check.provider},
        )
        return _Answer("error", detail=type(result).__name__)

    def _record(self, checks: Sequence[DueCheck], answers: Sequence[_Answer]) -> None:
        now = self._clock.now()
        found: dict[str, list[StatusReport]] = {}
        again: dict[str, datetime] = {}
        ended: list[str] = []
        given_up: dict[str, str] = {}
        results: list[tuple[DueCheck, str]] = []
        for check, answer in zip(checks, answers, strict=True):
            result = answer.result
            if answer.report is not None:
                found.setdefault(check.channel_id, []).append(self._dated(answer.report, check))
                ended.append(check.message_id)
            elif result == "unsupported":
                ended.append(check.message_id)
            elif result == "unknown":
                given_up[check.message_id] = f"status checks ended: {answer.detail}"
            elif now >= check.sent_at + GIVE_UP_AFTER:
                result = "gave_up"
                hours = int(GIVE_UP_AFTER.total_seconds() // 3600)
                given_up[check.message_id] = (
                    f"no final status from {check.provider} within {hours} h of the send; "
                    "status checks ended"
                )
            else:
                again[check.message_id] = self._next_check(check, now)
            results.append((check, result))
        # The reports of each channel take the webhooks' path, restricted to its messages.
        for channel_id, reports in found.items():
            self._statuses.apply_many(reports, restrict_to=channel_id)
        self._queue.record(again=again, ended=ended, given_up=given_up, now=now)
        for check, result in results:
            self._metrics.status_checks.labels(check.provider, result).inc()
            if result in ("gave_up", "unknown"):
                log.info(
                    "status checks of message %s ended: %s",
                    check.message_id,
                    given_up[check.message_id],
                    extra={"message_id": check.message_id, "provider": check.provider},
                )

    def _next_check(self, check: DueCheck, now: datetime) -> datetime:
        """As long a wait as the message's age (doubling it), between ``status_check_after``
        and :data:`MAX_INTERVAL`; the last check falls at the give-up time."""
        wait = min(max(self._after, now - check.sent_at), MAX_INTERVAL)
        return min(now + wait, check.sent_at + GIVE_UP_AFTER)

    def _dated(self, report: StatusReport, check: DueCheck) -> StatusReport:
        """The provider's time of the change, within the send and now (clocks differ)."""
        now = self._clock.now()
        when = report.occurred_at or now
        return replace(report, occurred_at=min(max(when, check.sent_at), now))
