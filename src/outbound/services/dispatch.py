"""The dispatcher: claims due messages, calls the channel's provider, records the outcome.

Never holds a database transaction across a provider call: claim and commit, call, record.
Several lanes run at once so that claiming, sending and recording overlap, beside the
worker's housekeeping (:mod:`outbound.services.housekeeping`). The dispatcher only
orchestrates: its statements are in :mod:`outbound.adapters.queue` (the outbox, the send
context of a batch, the channels' sending slots and stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from prometheus_client import Histogram

from outbound.adapters.db.engine import Database
from outbound.adapters.metrics import Metrics
from outbound.adapters.providers.base import (
    ChannelInfo,
    OutgoingMessage,
    Provider,
    SendLookup,
    SendResult,
)
from outbound.adapters.queue.channel_state import ChannelState
from outbound.adapters.queue.outbox import MESSAGES_QUEUED, ClaimedMessage, Outbox, Outcome
from outbound.adapters.queue.send_context import SendContext, load_send_context
from outbound.adapters.secrets import SecretBox
from outbound.clock import Clock
from outbound.config import (
    DEFAULT_HTTP_TIMEOUT,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_RETRY_BASE_SECONDS,
    DEFAULT_RETRY_MAX_SECONDS,
    DEFAULT_SHUTDOWN_GRACE_SECONDS,
    DEFAULT_STATUS_CHECK_AFTER_SECONDS,
    DEFAULT_WORKER_BATCH_SIZE,
    DEFAULT_WORKER_CONCURRENCY,
    DEFAULT_WORKER_POLL_INTERVAL,
)
from outbound.domain.circuit import DEFAULT_COOLDOWN_SECONDS, DEFAULT_THRESHOLD, CircuitBreaker
from outbound.domain.consent import CONSENT_WITHDRAWN
from outbound.domain.numbers import mask_number
from outbound.domain.provider_errors import INTERRUPTED, UNKNOWN_OUTCOME_CODES, error_meaning
from outbound.domain.retry import retry_delay
from outbound.domain.statuses import MessageStatus
from outbound.domain.windows import next_window_open
from outbound.errors import (
    CredentialsError,
    PermanentProviderError,
    ProviderError,
    RecipientOptedOutError,
    TransientProviderError,
)
from outbound.services.consent import record_consent
from outbound.services.housekeeping import Housekeeping
from outbound.services.retention import Retention
from outbound.services.status_checks import StatusChecker
from outbound.services.statuses import StatusService

__all__ = ["Dispatcher", "default_worker_id"]

log = logging.getLogger(__name__)

DB_ERROR_MAX_PAUSE = 30.0
RECORD_ATTEMPTS = 4
# The outcomes of a batch are recorded as its calls return, in groups: a group is written at
# most this long after its first outcome came back (or at once when the last call returned),
# so that a worker killed mid-batch leaves unrecorded only the calls then in flight, plus
# this much of the others, instead of every call of the batch.
RECORD_GROUP_SECONDS = 0.1
# Provider ids found by look-ups, remembered until their record is surely committed.
ADOPTED_MEMORY = 10_000
# A lane waiting for another to find work claims again itself after this many poll intervals.
IDLE_WAIT_INTERVALS = 25
# A batch claimed ahead that waited more than this share of its lease is given back unsent.
STALE_SHARE = 0.25


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class _Batch:
    claimed: list[ClaimedMessage]
    context: SendContext
    # when the lease began: slots must fall well within it
    claimed_at: datetime


class Dispatcher:
    """Drains the outbox through the provider adapters.

    ``batch_size`` messages are claimed at a time, each under a lease of ``lease_seconds``;
    at most ``concurrency`` provider calls are in flight, and the lanes (twice the
    concurrency over the batch size, up to 16) claim again at once after a batch; when
    nothing is due, one of them polls every ``poll_interval`` seconds and wakes the others
    when it finds work. A transient failure is retried after a backoff between
    ``retry_base_seconds`` and ``retry_max_seconds``; ``circuit_threshold`` of them in a row
    pause a channel for ``circuit_cooldown_seconds``. On stopping, in-flight batches get
    ``shutdown_grace_seconds`` to finish.
    """

    def __init__(
        self,
        db: Database,
        providers: Mapping[str, Provider],
        secrets: SecretBox,
        clock: Clock,
        *,
        worker_id: str | None = None,
        batch_size: int = DEFAULT_WORKER_BATCH_SIZE,
        concurrency: int = DEFAULT_WORKER_CONCURRENCY,
        poll_interval: float = DEFAULT_WORKER_POLL_INTERVAL,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        retry_base_seconds: float = DEFAULT_RETRY_BASE_SECONDS,
        retry_max_seconds: float = DEFAULT_RETRY_MAX_SECONDS,
        circuit_threshold: int = DEFAULT_THRESHOLD,
        circuit_cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS,
        shutdown_grace_seconds: float = DEFAULT_SHUTDOWN_GRACE_SECONDS,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        statuses: StatusService | None = None,
        retention: Retention | None = None,
        status_checker: StatusChecker | None = None,
        status_check_after_seconds: float = DEFAULT_STATUS_CHECK_AFTER_SECONDS,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
    ) -> None:
        self._metrics = metrics or Metrics()
        # The latency histogram of each provider, labelled once (labelling takes a lock).
        self._latency_of: dict[str, Histogram] = {}
        self._statuses = statuses
        self._db = db
        self._outbox = Outbox(db, status_check_after=timedelta(seconds=status_check_after_seconds))
        self._status_checker = status_checker
        self._channel_state = ChannelState(db)
        self._housekeeping = Housekeeping(db, clock, retention=retention)
        self._providers = providers
        self._secrets = secrets
        self._clock = clock
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self._lease_seconds = lease_seconds
        self._lease = timedelta(seconds=lease_seconds)
        # An attempt of unknown outcome may still be on its way to the provider for up to the
        # HTTP timeout after it began: it is looked up (and sent again) only after that.
        self._in_flight = timedelta(seconds=http_timeout)
        self._retry_base_seconds = retry_base_seconds
        self._retry_max_seconds = retry_max_seconds
        self._circuit_threshold = circuit_threshold
        self._circuit_cooldown = timedelta(seconds=circuit_cooldown_seconds)
        self._shutdown_grace_seconds = shutdown_grace_seconds
        self.worker_id = worker_id or default_worker_id()
        self._rng = rng or random.Random()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._breakers: dict[str, CircuitBreaker] = {}
        self._adopted: set[str] = set()
        # When nothing is due, one lane polls and the others wait for it to find work, so
        # that an idle worker makes one claim per poll interval, not one per lane.
        self._polling = False
        self._work_found: asyncio.Event | None = None
        # Set when this process queues messages (accepted here): the polling lane claims at
        # once instead of at its next poll.
        self._queued: asyncio.Event | None = None

    async def run_once(self, limit: int | None = None) -> int:
        """Claim one batch, send it, record it; returns how many messages were claimed."""
        batch = await self._claim(limit)
        if batch is None:
            return 0
        await self._process(batch)
        return len(batch.claimed)

    async def _process(self, batch: _Batch) -> None:
        """Send a claimed batch and record every outcome."""
        recording = await self._deliver(batch)
        await recording

    async def _claim(self, limit: int | None = None) -> _Batch | None:
        """Lease due messages and load what sending them needs; ``None`` when none are due."""
        now = self._clock.now()
        claimed = await asyncio.to_thread(
            self._outbox.claim,
            self.worker_id,
            limit or self._batch_size,
            now,
            self._lease,
        )
        if not claimed:
            return None
        context = await asyncio.to_thread(load_send_context, self._db, self._secrets, claimed)
        return _Batch(claimed, context, now)

    async def _deliver(self, batch: _Batch) -> asyncio.Task[None]:
        """Send a claimed batch, recording each outcome as its call returns.

        Returns once every call has returned, with the task that records the last outcomes
        (a bug's exception leaves its message without an outcome: leased, see
        :meth:`_send_and_keep`). The contact windows are checked and the sending slots
        reserved now, when the batch starts, not when it was claimed (a lane claims its next
        batch ahead).
        """
        recorder = _Recorder(self, batch)
        recording = asyncio.create_task(recorder.run())
        try:
            # Messages whose last attempt has an unknown outcome, asked of their provider
            # first: one it accepted then is recorded sent, whatever would happen to it now.
            found = await self._found(batch)
            recorder.add_all(found)
            found_ids = {o.message_id for o in found}
            now = self._clock.now()
            # Consent withdrawn since the message was accepted: skipped, without a provider
            # call and without using an attempt.
            withdrawn = [
                m
                for m in batch.claimed
                if m.id in batch.context.withdrawn and m.id not in found_ids
            ]
            claimed = [
                m
                for m in batch.claimed
                if m.id not in batch.context.withdrawn and m.id not in found_ids
            ]
            held = self._outside_window(claimed, batch.context, now)
            in_window = [m for m in claimed if m.id not in held]
            slots: dict[str, datetime] = {}
            deferred: dict[str, datetime] = {}
            wanted = self._rate_limited(in_window, batch.context)
            if wanted:
                # A message must be sent well within its lease, or another worker would take it.
                horizon = self._lease / 2
                slots, deferred = await asyncio.to_thread(
                    self._channel_state.reserve_slots,
                    wanted,
                    now=self._clock.now(),
                    until=batch.claimed_at + horizon,
                )
            deferred.update(held)
            # Past the sender's rate, or the contact's window, for now: back to the queue
            # until the next free slot or the window's opening.
            recorder.add_all(
                Outcome(message_id, MessageStatus.QUEUED, retry_at=when, refund_attempt=True)
                for message_id, when in deferred.items()
            )
            recorder.add_all(self._consent_withdrawn(m) for m in withdrawn)
            to_send = [m for m in claimed if m.id not in deferred]
            sends = [
                asyncio.create_task(
                    self._send_and_keep(message, batch.context, slots.get(message.id), recorder)
                )
                for message in to_send
            ]
            try:
                await asyncio.gather(*sends)
            except asyncio.CancelledError:
                # Stopping past the grace period: the calls still in flight are abandoned
                # (their messages stay leased); what came back is still recorded.
                for task in sends:
                    task.cancel()
                await asyncio.gather(*sends, return_exceptions=True)
                raise
        except BaseException:
            recorder.close()
            try:
                await asyncio.shield(recording)
            except (Exception, asyncio.CancelledError):
                log.exception("recording a batch failed while stopping")
            raise
        recorder.close()
        return recording

    async def _send_and_keep(
        self,
        message: ClaimedMessage,
        context: SendContext,
        slot: datetime | None,
        recorder: _Recorder,
    ) -> None:
        try:
            outcome = await self._send(message, context, slot)
        except Exception:
            # A bug, not a provider answer: leave the message leased; after the lease it is
            # claimed again and, past max_attempts, failed.
            log.exception("unexpected error sending message %s", message.id)
            return
        recorder.add(outcome)

    async def _finish(self, batch: _Batch, outcomes: list[Outcome]) -> None:
        """Record a batch's outcomes (retrying a database that is away for a moment)."""
        # Shielded: a shutdown must not lose the record of messages already sent.
        await asyncio.shield(self._record(outcomes))
        providers = {c.id: c.provider for c in batch.context.channels.values()}
        channel_of = {m.id: m.channel_id for m in batch.claimed}
        if self._statuses is not None:
            sent = [
                (o.provider or providers.get(channel_of[o.message_id], ""), o.provider_message_id)
                for o in outcomes
                if o.status is MessageStatus.SENT and o.provider_message_id
            ]
            await asyncio.to_thread(self._statuses.replay_orphans, sent)
        moves = Counter(
            (o.status.value, o.provider or providers.get(channel_of[o.message_id], ""))
            for o in outcomes
        )
        for (status, provider), count in moves.items():
            self._metrics.transitions.labels(status, provider).inc(count)

    async def _record(self, outcomes: list[Outcome]) -> None:
        # Messages already sent that are not recorded would be sent again once their lease
        # ends: a database error gets a few more tries before giving up on the record.
        for attempt in range(RECORD_ATTEMPTS):
            try:
                await asyncio.to_thread(
                    self._outbox.record, self.worker_id, outcomes, self._clock.now()
                )
                return
            except sa.exc.OperationalError:
                if attempt == RECORD_ATTEMPTS - 1:
                    raise
                pause = min(DB_ERROR_MAX_PAUSE, self._poll_interval * 2**attempt)
                log.warning("recording a batch failed; retrying in %.1f s", pause, exc_info=True)
                await asyncio.sleep(pause)

    async def _release(self, batch: _Batch) -> None:
        """Give back a claimed batch that will not be sent (shutdown, or it waited too long
        for its turn): queued, due at once, without using an attempt."""
        now = self._clock.now()
        await self._record([self._given_back(m, now) for m in batch.claimed])

    @staticmethod
    def _given_back(message: ClaimedMessage, now: datetime) -> Outcome:
        if message.previous_attempt_at is None:
            return Outcome(message.id, MessageStatus.QUEUED, retry_at=now, refund_attempt=True)
        # Not looked up yet: it keeps a code that has it looked up when claimed again.
        return Outcome(
            message.id,
            MessageStatus.QUEUED,
            retry_at=now,
            refund_attempt=True,
            error_code=INTERRUPTED,
            error_message=error_meaning(None, INTERRUPTED),
        )

    @staticmethod
    def _outside_window(
        claimed: list[ClaimedMessage], context: SendContext, now: datetime
    ) -> dict[str, datetime]:
        """Messages whose contact window closed before they could go: back until it opens."""
        held: dict[str, datetime] = {}
        for message in claimed:
            window = context.windows.get(message.configuration_id or "")
            if window is None or message.time_zone is None:
                continue
            opens = next_window_open(window, now, message.time_zone)
            if opens > now:
                held[message.id] = opens
        return held

    @staticmethod
    def _consent_withdrawn(message: ClaimedMessage) -> Outcome:
        log.info(
            "message %s to %s skipped: consent withdrawn",
            message.id,
            mask_number(message.to_number),
            extra={"message_id": message.id},
        )
        return Outcome(
            message.id,
            MessageStatus.SKIPPED,
            error_code=CONSENT_WITHDRAWN,
            error_message="the number withdrew consent on this channel after the message "
            "was accepted",
            refund_attempt=True,
            reason=CONSENT_WITHDRAWN,
        )

    def _failed(self, message: ClaimedMessage, code: str, text: str) -> Outcome:
        return Outcome(message.id, MessageStatus.FAILED, error_code=code, error_message=text)

    def _breaker(self, channel_id: str) -> CircuitBreaker:
        breaker = self._breakers.get(channel_id)
        if breaker is None:
            breaker = self._breakers[channel_id] = CircuitBreaker(
                threshold=self._circuit_threshold, cooldown=self._circuit_cooldown
            )
        return breaker

    def _outgoing(
        self, message: ClaimedMessage, channel: ChannelInfo, context: SendContext
    ) -> OutgoingMessage:
        return OutgoingMessage(
            id=message.id,
            org_id=message.org_id,
            channel=channel,
            to=message.to_number,
            body=message.body or "",
            attempt=message.attempts,
            send_as_template=message.send_as_template,
            template_parameters=message.template_parameters,
            # Recorded when the message was accepted (the language sent); messages accepted
            # before that was recorded take the template's current one.
            content_sid=message.content_sid
            or (context.content_sids.get(message.template_id) if message.template_id else None),
            first_attempt_at=message.first_attempt_at,
        )

    async def _call(self, outgoing: OutgoingMessage) -> SendResult:
        """One provider call through the channel's circuit breaker."""
        channel = outgoing.channel
        provider = self._providers.get(channel.provider)
        if provider is None:
            raise PermanentProviderError(
                f"no adapter for provider {channel.provider!r}", code="provider_unavailable"
            )
        breaker = self._breaker(channel.id)
        started = time.perf_counter()
        try:
            async with self._semaphore:
                result = await provider.send(outgoing)
        except TransientProviderError:
            breaker.failure(self._clock.now())
            self._metrics.provider_errors.labels(channel.provider, "transient").inc()
            raise
        except PermanentProviderError as exc:
            breaker.success()  # the provider answered: it is up
            kind = "credentials" if isinstance(exc, CredentialsError) else "permanent"
            self._metrics.provider_errors.labels(channel.provider, kind).inc()
            raise
        finally:
            latency = self._latency_of.get(channel.provider)
            if latency is None:
                latency = self._metrics.provider_latency.labels(channel.provider)
                self._latency_of[channel.provider] = latency
            latency.observe(time.perf_counter() - started)
        breaker.success()
        return result

    @staticmethod
    def _rate_limited(
        claimed: list[ClaimedMessage], context: SendContext
    ) -> dict[str, tuple[float, list[str]]]:
        """The messages of rate-limited channels, by channel, with the channel's rate."""
        wanted: dict[str, tuple[float, list[str]]] = {}
        for message in claimed:
            channel = context.channels.get(message.channel_id)
            if channel is not None and channel.rate_per_second:
                wanted.setdefault(channel.id, (float(channel.rate_per_second), []))[1].append(
                    message.id
                )
        return wanted

    async def _send(
        self, message: ClaimedMessage, context: SendContext, slot: datetime | None = None
    ) -> Outcome:
        if message.attempts > message.max_attempts:
            return self._failed(
                message, "max_attempts_exceeded", f"gave up after {message.max_attempts} attempts"
            )
        if slot is not None:
            wait = (slot - self._clock.now()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
        channel = context.channels.get(message.channel_id)
        if channel is None:
            return self._failed(message, "channel_deleted", "the message's channel was deleted")
        fallback = context.fallbacks.get(message.configuration_id or "")
        now = self._clock.now()
        primary_usable = channel.healthy and self._breaker(channel.id).allow(now)
        fallback_usable = fallback is not None and self._breaker(fallback.id).allow(now)
        if not primary_usable:
            if fallback is not None and fallback_usable:
                return await self._attempt(message, fallback, context, failover=True)
            # Primary down and no way around it: wait for the circuit to let a probe through.
            reopen = self._breaker(channel.id).reopens_at() or now
            return Outcome(
                message.id,
                MessageStatus.QUEUED,
                error_code="circuit_open",
                error_message=f"{channel.provider} is failing; sending paused",
                retry_at=max(reopen, now),
                refund_attempt=True,
            )
        outcome = await self._attempt(message, channel, context, failover=False)
        if (
            outcome.status is MessageStatus.QUEUED
            and not outcome.refund_attempt
            and fallback is not None
            and fallback_usable
        ):
            # A provider-side failure of the primary: go through the fallback right away.
            log.info(
                "message %s: %s failed (%s), failing over to %s",
                message.id,
                channel.provider,
                outcome.error_code,
                fallback.provider,
                extra={"message_id": message.id, "provider": channel.provider},
            )
            return await self._attempt(message, fallback, context, failover=True)
        return outcome

    async def _found(self, batch: _Batch) -> list[Outcome]:
        """The outcomes of the batch's messages that a look-up found sent (see
        :meth:`_look_up`)."""
        unknown = [m for m in batch.claimed if m.previous_attempt_at is not None]
        if not unknown:
            return []
        context = batch.context
        results = await asyncio.gather(
            *(
                self._look_up(
                    m,
                    (
                        context.channels.get(m.channel_id),
                        context.fallbacks.get(m.configuration_id or ""),
                    ),
                    context,
                )
                for m in unknown
            ),
            return_exceptions=True,
        )
        found: list[Outcome] = []
        for message, result in zip(unknown, results, strict=True):
            if isinstance(result, Outcome):
                found.append(result)
            elif isinstance(result, asyncio.CancelledError):
                raise result
            elif isinstance(result, BaseException):
                # Sent again, as without a look-up.
                log.error(
                    "looking up message %s failed",
                    message.id,
                    exc_info=(type(result), result, result.__traceback__),
                )
        return found

    async def _look_up(
        self,
        message: ClaimedMessage,
        channels: tuple[ChannelInfo | None, ChannelInfo | None],
        context: SendContext,
    ) -> Outcome | None:
        """An earlier attempt of ``message`` has an unknown outcome (its worker died while it
        was sending): ask the providers that can tell whether they accepted it. Its outcome
        ``sent`` when one did; None (send it) when none did or none can tell."""
        assert message.previous_attempt_at is not None
        for channel in channels:
            if channel is None:
                continue
            provider = self._providers.get(channel.provider)
            if not isinstance(provider, SendLookup):
                continue
            outgoing = self._outgoing(message, channel, context)
            try:
                async with self._semaphore:
                    ids = await provider.find_sent(outgoing, message.previous_attempt_at)
            except ProviderError as exc:
                # Sent again: at least once, as without a look-up.
                self._metrics.provider_lookups.labels(channel.provider, "error").inc()
                log.warning(
                    "message %s: looking up its earlier send at %s failed (%s %s)",
                    message.id,
                    channel.provider,
                    type(exc).__name__,
                    exc.code,
                    extra={"message_id": message.id, "provider": channel.provider},
                )
                continue
            if ids is None:
                self._metrics.provider_lookups.labels(channel.provider, "unavailable").inc()
                continue
            # A match may be another of our messages, same text to the same number, that was
            # recorded: only one not recorded yet is this one's.
            taken = await asyncio.to_thread(self._outbox.known_provider_ids, channel.provider, ids)
            free = [i for i in ids if i not in taken and i not in self._adopted]
            if not free:
                self._metrics.provider_lookups.labels(channel.provider, "not_found").inc()
                continue
            self._metrics.provider_lookups.labels(channel.provider, "found").inc()
            self._adopt(free[0])
            log.info(
                "message %s: its earlier send was accepted by %s as %s; not sent again",
                message.id,
                channel.provider,
                free[0],
                extra={"message_id": message.id, "provider": channel.provider},
            )
            failover = channel.id != message.channel_id
            return Outcome(
                message.id,
                MessageStatus.SENT,
                provider_message_id=free[0],
                sent_via_channel_id=channel.id if failover else None,
                provider=channel.provider if failover else None,
                from_number=channel.sender if failover else None,
                found=True,
            )
        return None

    def _adopt(self, provider_message_id: str) -> None:
        # Until its record is committed, a provider id found is not in the database yet: two
        # messages of one batch must not both take it.
        if len(self._adopted) >= ADOPTED_MEMORY:
            self._adopted.clear()
        self._adopted.add(provider_message_id)

    async def _attempt(
        self,
        message: ClaimedMessage,
        channel: ChannelInfo,
        context: SendContext,
        *,
        failover: bool,
    ) -> Outcome:
        via = channel.id if failover else None
        try:
            result = await self._call(self._outgoing(message, channel, context))
        except TransientProviderError as exc:
            if message.attempts >= message.max_attempts:
                return self._failed(message, exc.code or "transient_error", exc.message)
            delay = retry_delay(
                message.attempts,
                base=self._retry_base_seconds,
                cap=self._retry_max_seconds,
                retry_after=exc.retry_after,
                rng=self._rng,
            )
            if exc.code in UNKNOWN_OUTCOME_CODES and isinstance(
                self._providers.get(channel.provider), SendLookup
            ):
                # The request may still reach the provider: look it up once it cannot.
                delay = max(delay, self._in_flight.total_seconds())
            log.info(
                "message %s to %s: transient error %s, retry in %.1f s",
                message.id,
                mask_number(message.to_number),
                exc.code,
                delay,
                extra={"message_id": message.id, "provider": channel.provider},
            )
            return Outcome(
                message.id,
                MessageStatus.QUEUED,
                error_code=exc.code or "transient_error",
                error_message=exc.message,
                retry_at=self._clock.now() + timedelta(seconds=delay),
            )
        except CredentialsError as exc:
            # The channel, not the message, is at fault: stop the channel, keep the message.
            await self._stop_channel(channel, exc)
            return Outcome(
                message.id,
                MessageStatus.QUEUED,
                error_code=exc.code or "bad_credentials",
                error_message=exc.message,
                retry_at=self._clock.now(),
                refund_attempt=True,
            )
        except RecipientOptedOutError as exc:
            await asyncio.to_thread(self._withdraw_consent, channel, message.to_number, exc)
            return self._failed(message, exc.code or "opted_out", exc.message)
        except PermanentProviderError as exc:
            log.info(
                "message %s to %s: permanent error %s",
                message.id,
                mask_number(message.to_number),
                exc.code,
                extra={"message_id": message.id, "provider": channel.provider},
            )
            return self._failed(message, exc.code or "permanent_error", exc.message)
        return Outcome(
            message.id,
            MessageStatus.SENT,
            provider_message_id=result.provider_message_id,
            sent_via_channel_id=via,
            provider=channel.provider if failover else None,
            from_number=channel.sender if failover else None,
        )

    async def _stop_channel(self, channel: ChannelInfo, exc: CredentialsError) -> None:
        detail = f"credentials refused by {channel.provider} ({exc.code}): {exc.message}"[:500]
        await asyncio.to_thread(self._channel_state.stop, channel.id, detail, self._clock.now())
        log.error(
            "channel %s stopped: %s",
            channel.id,
            detail,
            extra={"channel_id": channel.id, "provider": channel.provider},
        )

    def _withdraw_consent(
        self, channel: ChannelInfo, number: str, exc: RecipientOptedOutError
    ) -> None:
        with self._db.transaction() as session:
            record_consent(
                session,
                org_id=channel.org_id,
                channel_id=channel.id,
                number=number,
                opted_out=True,
                source="provider_error",
                detail=f"{channel.provider} {exc.code}",
                now=self._clock.now(),
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish in-flight batches within the grace period."""
        presence = self._db.presence("dispatchers")
        await asyncio.to_thread(presence.join, self._reclaim_dead)
        loop = asyncio.get_running_loop()
        queued = self._queued = asyncio.Event()

        def wake() -> None:  # called from the thread that committed
            loop.call_soon_threadsafe(queued.set)

        unlisten = self._db.listen(MESSAGES_QUEUED, wake)
        try:
            await self._run(stop)
        finally:
            unlisten()
            presence.leave()

    def _reclaim_dead(self) -> None:
        """No other dispatcher is alive on this (SQLite) database: the leases still running
        are those of dead ones, and their messages are due now rather than when the leases
        would end."""
        # A send begins at most a quarter of a lease after its claim (a batch that waited
        # longer is given back unsent) and may be on its way for the HTTP timeout after.
        count = self._outbox.expire_leases(
            self._clock.now(), self._lease * STALE_SHARE + self._in_flight
        )
        if count:
            log.warning(
                "dispatcher %s: %d messages were being sent by a dispatcher that is gone; "
                "their leases end once their sends can no longer be on their way",
                self.worker_id,
                count,
            )

    async def _run(self, stop: asyncio.Event) -> None:
        lanes = max(1, 2 * self._concurrency // self._batch_size)
        lanes = min(lanes, 16)
        log.info("dispatcher %s started with %d lanes", self.worker_id, lanes)
        tasks = [asyncio.create_task(self._lane(stop)) for _ in range(lanes)]
        tasks.append(asyncio.create_task(self._housekeeping.maintain(stop)))
        if self._statuses is not None:
            tasks.append(
                asyncio.create_task(self._housekeeping.sweep_orphans(stop, self._statuses))
            )
        if self._status_checker is not None:
            tasks.append(
                asyncio.create_task(self._housekeeping.check_statuses(stop, self._status_checker))
            )
        await stop.wait()
        done, pending = await asyncio.wait(tasks, timeout=self._shutdown_grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("dispatcher lane ended with an error", exc_info=task.exception())
        log.info("dispatcher %s stopped", self.worker_id)

    async def _lane(self, stop: asyncio.Event) -> None:
        """Claim, send, record, batch after batch, with the database work off the sending path.

        While a batch is being sent, the lane already claims the next one and the previous
        batch's outcomes are being recorded, so that the provider calls do not wait for the
        database (one batch ahead and one behind, at most).
        """
        failures = 0
        ahead: asyncio.Task[_Batch | None] | None = None
        recording: set[asyncio.Task[None]] = set()
        previous: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                pause = self._poll_interval
                claimed = 0
                try:
                    claim = ahead if ahead is not None else asyncio.create_task(self._claim())
                    ahead = claim  # ours to give back until it is sent
                    try:
                        # Shielded: a cancelled lane still gives back what the claim took.
                        batch = await asyncio.shield(claim)
                    finally:
                        if claim.done():
                            ahead = None
                    if batch is not None and self._stale(batch):
                        # Its lease ran too long while it waited: back to the queue.
                        await self._release(batch)
                        batch = None
                    if batch is not None:
                        claimed = len(batch.claimed)
                        if not stop.is_set():
                            ahead = asyncio.create_task(self._claim())
                        # This batch's record runs before the previous one is awaited: an
                        # error there must not keep this one from being recorded.
                        finish = await self._deliver(batch)
                        recording.add(finish)
                        finish.add_done_callback(recording.discard)
                        behind, previous = previous, finish
                        if behind is not None:
                            await asyncio.shield(behind)
                    failures = 0
                except sa.exc.OperationalError as exc:
                    # The database went away for a moment; leases protect the claimed rows.
                    failures += 1
                    pause = min(DB_ERROR_MAX_PAUSE, self._poll_interval * 2**failures)
                    log.warning("database error in dispatcher (%s); retrying in %.1f s", exc, pause)
                except Exception:
                    # A bug or a misconfiguration (a secret key that opens no credentials): a
                    # lane that died silently would leave the worker running and sending nothing.
                    failures += 1
                    pause = min(DB_ERROR_MAX_PAUSE, self._poll_interval * 2**failures)
                    log.exception("dispatcher batch failed; retrying in %.1f s", pause)
                if claimed:
                    self._found_work()
                elif failures:
                    try:
                        await asyncio.wait_for(stop.wait(), pause)
                    except TimeoutError:
                        pass
                else:
                    await self._idle(stop)
        finally:
            last = {previous} if previous is not None else set()
            await self._drain_lane(ahead, recording | last)

    def _found_work(self) -> None:
        if self._work_found is not None:
            # Wakes the lanes waiting now; set and clear, as a pulse.
            self._work_found.set()
            self._work_found.clear()

    async def _idle(self, stop: asyncio.Event) -> None:
        """Nothing was due: wait a poll interval if no other lane is polling (or until this
        process queues messages), else until the lane that polls finds work (or a few
        intervals, in case it stopped)."""
        if self._work_found is None:
            self._work_found = asyncio.Event()
        if self._polling:
            waits = [
                asyncio.ensure_future(self._work_found.wait()),
                asyncio.ensure_future(stop.wait()),
            ]
            try:
                await asyncio.wait(
                    waits,
                    timeout=self._poll_interval * IDLE_WAIT_INTERVALS,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                for waiting in waits:
                    waiting.cancel()
            return
        self._polling = True
        waits = [asyncio.ensure_future(stop.wait())]
        if self._queued is not None:
            waits.append(asyncio.ensure_future(self._queued.wait()))
        try:
            await asyncio.wait(
                waits, timeout=self._poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiting in waits:
                waiting.cancel()
            if self._queued is not None:
                self._queued.clear()
            self._polling = False

    def _stale(self, batch: _Batch) -> bool:
        """Whether a batch claimed ahead waited so long that its lease could run out mid-send."""
        waited = (self._clock.now() - batch.claimed_at).total_seconds()
        return waited > self._lease_seconds * STALE_SHARE

    async def _drain_lane(
        self, ahead: asyncio.Task[_Batch | None] | None, recording: set[asyncio.Task[None]]
    ) -> None:
        """On the way out: finish recording, and give back a batch claimed but not sent."""
        for task in list(recording):
            try:
                await asyncio.shield(task)
            except (Exception, asyncio.CancelledError):
                log.exception("recording a batch failed while stopping")
        if ahead is not None:
            try:
                batch = await asyncio.shield(ahead)
                if batch is not None:
                    await asyncio.shield(self._release(batch))
            except (Exception, asyncio.CancelledError):
                log.exception("giving back a claimed batch failed while stopping")


class _Recorder:
    """The outcomes of one batch, recorded in groups as its provider calls return.

    A group is written (one transaction, :meth:`Dispatcher._finish`) once
    ``RECORD_GROUP_SECONDS`` have passed since its first outcome, or at once when the batch
    has no call left in flight; the outcomes that come back meanwhile make the next group.
    One group at a time per batch, so that a slow database gets fewer, larger groups.
    """

    def __init__(self, dispatcher: Dispatcher, batch: _Batch) -> None:
        self._dispatcher = dispatcher
        self._batch = batch
        self._pending: list[Outcome] = []
        self._arrived = asyncio.Event()
        self._closed = asyncio.Event()

    def add(self, outcome: Outcome) -> None:
        self._pending.append(outcome)
        self._arrived.set()

    def add_all(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            self.add(outcome)

    def close(self) -> None:
        """No more outcomes will come: write what is left at once."""
        self._closed.set()
        self._arrived.set()

    async def run(self) -> None:
        error: Exception | None = None
        while True:
            await self._arrived.wait()
            if self._pending and not self._closed.is_set():
                # Let the calls that return within the window join this group.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), RECORD_GROUP_SECONDS)
            self._arrived.clear()
            group, self._pending = self._pending, []
            if group:
                try:
                    await self._dispatcher._finish(self._batch, group)
                except Exception as exc:
                    # The next groups are still recorded; the lane hears of the first error
                    # after them.
                    if error is not None:
                        log.exception("recording %d outcomes failed", len(group))
                    error = error or exc
            if self._closed.is_set() and not self._pending:
                break
        if error is not None:
            raise error
