"""The webhook deliverer: a loop beside the dispatcher that posts events to endpoints.

It keeps up to ``concurrency`` calls in flight: whenever there is room it claims due deliveries
(:class:`~outbound.adapters.queue.webhooks.WebhookQueue`), posts each signed event, and records
each attempt as its call returns, in a transaction of its own, so that a slow endpoint holds up
nothing but its own deliveries. A failed attempt (no answer, or a status outside 2xx) is tried
again after the retry schedule's wait (:data:`~outbound.domain.webhooks.RETRY_SCHEDULE`, about a
day in all), then the delivery is ``failed``; an endpoint whose every attempt has failed for
``disable_after`` is disabled. Once an hour, finished deliveries past their retention go.

No transaction is open during a call. A deliverer that dies leaves its deliveries
``delivering`` until their lease expires, then any deliverer takes them again: an event may
reach its endpoint twice, with the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.metrics import Metrics
from outbound.adapters.queue.webhooks import (
    DELIVERIES_QUEUED,
    AttemptResult,
    ClaimedDelivery,
    WebhookQueue,
)
from outbound.adapters.secrets import SecretBox
from outbound.adapters.webhook_client import WebhookClient
from outbound.clock import Clock
from outbound.config import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_SHUTDOWN_GRACE_SECONDS,
    DEFAULT_WEBHOOK_CONCURRENCY,
    DEFAULT_WEBHOOK_DISABLE_AFTER_SECONDS,
    DEFAULT_WEBHOOK_RETENTION_DAYS,
    DEFAULT_WORKER_POLL_INTERVAL,
)
from outbound.domain.webhooks import RETRY_SCHEDULE, next_retry, signature_headers
from outbound.services.dispatch import default_worker_id

__all__ = ["IDLE_POLL_SECONDS", "PURGE_INTERVAL_SECONDS", "WebhookDeliverer", "event_body"]

log = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 3600.0
# The longest an idle deliverer waits between two looks for deliveries queued by another
# process (those of its own wake it at once).
IDLE_POLL_SECONDS = 1.0
_MAX_PAUSE = 30.0


def event_body(payload: dict[str, object]) -> bytes:
    """The bytes an event is posted as (the same for every attempt)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookDeliverer:
    """Claims, posts and records webhook deliveries until told to stop."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        clock: Clock,
        client: WebhookClient,
        *,
        worker_id: str | None = None,
        concurrency: int = DEFAULT_WEBHOOK_CONCURRENCY,
        poll_interval: float = DEFAULT_WORKER_POLL_INTERVAL,
        idle_poll_seconds: float = IDLE_POLL_SECONDS,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        retry_schedule: Sequence[float] = RETRY_SCHEDULE,
        disable_after_seconds: float = DEFAULT_WEBHOOK_DISABLE_AFTER_SECONDS,
        retention_days: float = DEFAULT_WEBHOOK_RETENTION_DAYS,
        shutdown_grace_seconds: float = DEFAULT_SHUTDOWN_GRACE_SECONDS,
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._secrets = secrets
        self._clock = clock
        self._client = client
        self._queue = WebhookQueue(db)
        self.worker_id = worker_id or default_worker_id()
        self._concurrency = concurrency
        self._poll = max(poll_interval, 0.05)
        self._idle = idle_poll_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self._schedule = tuple(retry_schedule)
        self._disable_after = timedelta(seconds=disable_after_seconds)
        self._retention = timedelta(days=retention_days)
        self._grace = shutdown_grace_seconds
        self._metrics = metrics
        self._secret_cache: dict[str, str] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; then let calls in flight end within the grace.

        Deliveries queued by this process wake it at once; when a claim finds nothing, it
        looks again after the poll interval, doubled at each empty claim up to
        ``IDLE_POLL_SECONDS`` (the deliveries of other processes, and retries coming due).
        """
        inflight: set[asyncio.Task[None]] = set()
        pause = self._poll
        next_purge = 0.0
        loop = asyncio.get_running_loop()
        queued = asyncio.Event()

        def wake() -> None:  # called from the thread that committed
            loop.call_soon_threadsafe(queued.set)

        unlisten = self._db.listen(DELIVERIES_QUEUED, wake)
        log.info("webhook deliverer %s started", self.worker_id)
        try:
            while not stop.is_set():
                if loop.time() >= next_purge:
                    next_purge = loop.time() + PURGE_INTERVAL_SECONDS
                    await self._purge()
                room = self._concurrency - len(inflight)
                claimed: list[ClaimedDelivery] = []
                if room > 0:
                    queued.clear()
                    try:
                        claimed = await asyncio.to_thread(
                            self._queue.claim,
                            self.worker_id,
                            room,
                            self._clock.now(),
                            self._lease,
                        )
                        pause = (
                            self._poll if claimed else min(pause * 2, max(self._poll, self._idle))
                        )
                    except Exception:
                        log.exception("claiming webhook deliveries failed; will retry")
                        pause = min(pause * 2, _MAX_PAUSE)
                for delivery in claimed:
                    task = asyncio.create_task(self._deliver(delivery))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                if claimed and len(claimed) == room:
                    await asyncio.sleep(0)
                    continue
                # Nothing more to take now: wait for a call to end (its record may make the
                # next event of its message due), deliveries queued here, the pause, or the
                # stop.
                waits: set[asyncio.Task[Any]] = {
                    asyncio.create_task(stop.wait()),
                    asyncio.create_task(queued.wait()),
                }
                await asyncio.wait(
                    {*waits, *inflight}, timeout=pause, return_when=asyncio.FIRST_COMPLETED
                )
                for waiting in waits:
                    waiting.cancel()
        finally:
            unlisten()
            if inflight:
                _, late = await asyncio.wait(set(inflight), timeout=self._grace)
                for task in late:
                    task.cancel()
                if late:
                    await asyncio.gather(*late, return_exceptions=True)
            log.info("webhook deliverer %s stopped", self.worker_id)

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        now = self._clock.now()
        try:
            secret = self._secret(delivery.secret_encrypted)
        except Exception as exc:
            # The key that opens it is gone: an attempt that failed, recorded as such.
            log.error("webhook endpoint %s: its secret cannot be opened", delivery.endpoint_id)
            await self._record(delivery, AttemptResult(delivery.id, None, str(exc)[:200], 0))
            return
        body = event_body(delivery.payload)
        headers = signature_headers(secret, delivery.event_id, int(now.timestamp()), body)
        response = await self._client.post(delivery.url, body, headers)
        result = AttemptResult(
            delivery.id, response.status_code, response.error, response.duration_ms
        )
        # Shielded: a stop that cancels the call's task must not lose an answer received.
        await asyncio.shield(self._record(delivery, result))

    async def _record(self, delivery: ClaimedDelivery, result: AttemptResult) -> None:
        retry_in = None if result.succeeded else next_retry(delivery.attempts, self._schedule)
        status: str | None = None
        for attempt in range(4):
            try:
                status = await asyncio.to_thread(
                    self._queue.record,
                    self.worker_id,
                    result,
                    self._clock.now(),
                    retry_in=retry_in,
                    disable_after=self._disable_after,
                )
                break
            except sa.exc.OperationalError:
                if attempt == 3:
                    log.exception("recording webhook delivery %s failed", delivery.id)
                    return
                await asyncio.sleep(0.2 * 2**attempt)
            except Exception:
                # A bug: the lease expires and the delivery is tried again.
                log.exception("recording webhook delivery %s failed", delivery.id)
                return
        if self._metrics is not None and status is not None:
            self._metrics.webhook_attempts.labels(
                "succeeded" if result.succeeded else "failed"
            ).inc()
            if not result.succeeded:
                self._metrics.webhook_failed(delivery.endpoint_id)
        if not result.succeeded:
            log.info(
                "webhook delivery %s to endpoint %s failed (%s), %s",
                delivery.id,
                delivery.endpoint_id,
                result.status_code or result.error,
                status,
                extra={"endpoint_id": delivery.endpoint_id, "event_id": delivery.event_id},
            )

    def _secret(self, token: str) -> str:
        secret = self._secret_cache.get(token)
        if secret is None:
            secret = self._secrets.decrypt(token)["secret"]
            if len(self._secret_cache) > 1_000:
                self._secret_cache.clear()
            self._secret_cache[token] = secret
        return secret

    async def _purge(self) -> None:
        before = self._clock.now() - self._retention
        try:
            while await asyncio.to_thread(self._queue.purge, before) > 0:
                pass
        except Exception:
            log.exception("purging old webhook deliveries failed; will retry")
