"""Webhook endpoints: where an organisation's events go, with write-once, encrypted secrets.

An endpoint's URL must resolve to public addresses only (checked here when it is created or
changed, and again by the client at every call), unless the operator allowed its host. Its
signing secret is shown once, when the endpoint is created, and stored encrypted like channel
credentials. The delivery log lists each event sent to the endpoint with every attempt's answer;
a delivery can be sent again, and a test event queued.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from outbound.adapters.queue.webhooks import NewEvent, emit
from outbound.adapters.secrets import SecretBox
from outbound.adapters.webhook_client import resolve_addresses
from outbound.clock import Clock
from outbound.domain.public_ids import IdKind, decode_public_id, encode_public_id
from outbound.domain.webhooks import SECRET_PREFIX, TEST_EVENT, AllowedHosts, check_address
from outbound.errors import (
    InvalidRequestError,
    NotFoundError,
    SecretKeyError,
    UnsafeWebhookAddressError,
    message_of,
)
from outbound.schemas import (
    Page,
    WebhookAttemptOut,
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointOut,
    WebhookEndpointUpdate,
)
from outbound.services.audit import diff, record_audit, snapshot
from outbound.services.auth import Principal
from outbound.services.pagination import MAX_PAGE_SIZE, fetch_page
from outbound.services.public_ids import org_id_key, parse_public_id
from outbound.texts import N_

__all__ = ["WebhookEndpointService", "endpoint_out", "new_secret"]

_SECRET_BYTES = 32
_AUDITED = ("url", "description", "events", "enabled")


def new_secret() -> str:
    """A new signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def endpoint_out(endpoint: WebhookEndpoint) -> WebhookEndpointOut:
    return WebhookEndpointOut.model_validate(endpoint)


def _delivery_out(
    key: str, row: Any, *, payload: dict[str, Any] | None = None, attempts: list[Any] | None = None
) -> WebhookDeliveryOut:
    return WebhookDeliveryOut(
        id=encode_public_id(key, IdKind.DELIVERY, row.id),
        event_id=row.event_id,
        event_type=row.type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        payload=payload,
        attempt_log=None
        if attempts is None
        else [WebhookAttemptOut.model_validate(a) for a in attempts],
    )


class WebhookEndpointService:
    """Create, read, change and delete endpoints; their delivery log, redelivery, tests."""

    def __init__(
        self,
        db: Database,
        secret_box: SecretBox,
        clock: Clock,
        *,
        allowed_hosts: AllowedHosts | None = None,
    ) -> None:
        self._db = db
        self._secrets = secret_box
        self._clock = clock
        self._allowed = allowed_hosts or AllowedHosts()

    def _check_reachable(self, url: str) -> None:
        """Refuse a URL whose host resolves to an address that may not be called."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            addresses = resolve_addresses(host, parts.port)
        except (OSError, UnicodeError) as exc:
            raise InvalidRequestError(
                N_("%(host)s does not resolve", host=host), field="url"
            ) from exc
        try:
            for address in addresses:
                check_address(host, address, self._allowed)
        except UnsafeWebhookAddressError as exc:
            raise InvalidRequestError(message_of(exc), field="url") from exc

    def create(
        self, org_id: str, data: WebhookEndpointCreate, *, by: Principal | None = None
    ) -> WebhookEndpointCreated:
        self._check_reachable(data.url)
        secret = new_secret()
        now = self._clock.now()
        with self._db.transaction(urgent=True) as session:
            endpoint = WebhookEndpoint(
                org_id=org_id,
                url=data.url,
                description=data.description,
                events=list(data.events),
                secret_encrypted=self._secrets.encrypt({"secret": secret}),
                enabled=True,
                created_at=now,
                updated_at=now,
            )
            session.add(endpoint)
            session.flush()
            changes = diff({}, snapshot(endpoint, _AUDITED))
            record_audit(
                session,
                org_id,
                by,
                "webhook_endpoint.created",
                "webhook_endpoint",
                endpoint.id,
                now,
                changes=changes,
            )
            out = endpoint_out(endpoint)
        return WebhookEndpointCreated(**out.model_dump(), secret=secret)

    def list(self, org_id: str, cursor: str | None, limit: int) -> Page[WebhookEndpointOut]:
        query = sa.select(WebhookEndpoint).where(WebhookEndpoint.org_id == org_id)
        return fetch_page(
            self._db,
            query,
            WebhookEndpoint.created_at,
            WebhookEndpoint.id,
            cursor,
            limit,
            endpoint_out,
        )

    def get(self, org_id: str, endpoint_id: str) -> WebhookEndpointOut:
        with self._db.read() as session:
            return endpoint_out(self._load(session, org_id, endpoint_id))

    @staticmethod
    def _load(session: Any, org_id: str, endpoint_id: str) -> WebhookEndpoint:
        endpoint = session.execute(
            sa.select(WebhookEndpoint).where(
                WebhookEndpoint.id == endpoint_id, WebhookEndpoint.org_id == org_id
            )
        ).scalar_one_or_none()
        if endpoint is None:
            raise NotFoundError(N_("webhook endpoint not found"))
        return endpoint  # type: ignore[no-any-return]

    def update(
        self,
        org_id: str,
        endpoint_id: str,
        data: WebhookEndpointUpdate,
        *,
        by: Principal | None = None,
    ) -> WebhookEndpointOut:
        if data.url is not None:
            self._check_reachable(data.url)
        now = self._clock.now()
        with self._db.transaction(urgent=True) as session:
            endpoint = self._load(session, org_id, endpoint_id)
            before = snapshot(endpoint, _AUDITED)
            if data.url is not None:
                endpoint.url = data.url
            if data.events is not None:
                endpoint.events = list(data.events)
            if "description" in data.model_fields_set:
                endpoint.description = data.description
            if data.enabled is True and not endpoint.enabled:
                endpoint.enabled = True
                endpoint.disabled_at = None
                endpoint.disabled_reason = None
                endpoint.failing_since = None
                # What waited while it was disabled goes now, in order.
                session.execute(
                    sa.update(WebhookDelivery)
                    .where(
                        WebhookDelivery.endpoint_id == endpoint.id,
                        WebhookDelivery.status == "pending",
                    )
                    .values(next_attempt_at=now, updated_at=now)
                )
            elif data.enabled is False and endpoint.enabled:
                endpoint.enabled = False
                endpoint.disabled_at = now
                endpoint.disabled_reason = "disabled by hand"
            endpoint.updated_at = now
            changes = diff(before, snapshot(endpoint, _AUDITED))
            record_audit(
                session,
                org_id,
                by,
                "webhook_endpoint.updated",
                "webhook_endpoint",
                endpoint.id,
                now,
                changes=changes,
            )
            session.flush()
            return endpoint_out(endpoint)

    def delete(self, org_id: str, endpoint_id: str, *, by: Principal | None = None) -> None:
        with self._db.transaction(urgent=True) as session:
            endpoint = self._load(session, org_id, endpoint_id)
            changes = diff(snapshot(endpoint, _AUDITED), {})
            record_audit(
                session,
                org_id,
                by,
                "webhook_endpoint.deleted",
                "webhook_endpoint",
                endpoint.id,
                self._clock.now(),
                changes=changes,
            )
            deliveries = sa.select(WebhookDelivery.id).where(
                WebhookDelivery.endpoint_id == endpoint.id
            )
            session.execute(
                sa.delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries))
            )
            events = sa.select(WebhookDelivery.event_id).where(
                WebhookDelivery.endpoint_id == endpoint.id
            )
            event_ids = list(session.execute(events).scalars())
            session.execute(
                sa.delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
            )
            if event_ids:
                still_used = sa.select(WebhookDelivery.event_id).where(
                    WebhookDelivery.event_id == WebhookEvent.id
                )
                session.execute(
                    sa.delete(WebhookEvent).where(
                        WebhookEvent.id.in_(event_ids), ~sa.exists(still_used)
                    )
                )
            session.delete(endpoint)

    # --- the delivery log --------------------------------------------------------------

    def deliveries(
        self,
        org_id: str,
        endpoint_id: str,
        cursor: str | None,
        limit: int,
        status: str | None = None,
    ) -> Page[WebhookDeliveryOut]:
        """The endpoint's deliveries, newest first; ``cursor`` is the last id of a page."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidRequestError(
                N_("limit must be between 1 and %(maximum)s", maximum=MAX_PAGE_SIZE), field="limit"
            )
        query = (
            sa.select(WebhookDelivery, WebhookEvent.type)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.org_id == org_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit + 1)
        )
        if status:
            query = query.where(WebhookDelivery.status == status)
        with self._db.read() as session:
            self._load(session, org_id, endpoint_id)
            key = org_id_key(session, org_id)
            if cursor:
                before = parse_public_id(session, org_id, IdKind.DELIVERY, cursor)
                query = query.where(WebhookDelivery.id < before)
            rows = session.execute(query).all()
        more = len(rows) > limit
        rows = rows[:limit]
        data = [_delivery_out(key, _Row(d, t)) for d, t in rows]
        return Page[WebhookDeliveryOut](
            data=data,
            next_cursor=encode_public_id(key, IdKind.DELIVERY, rows[-1][0].id) if more else None,
        )

    def delivery(self, org_id: str, endpoint_id: str, delivery_id: str) -> WebhookDeliveryOut:
        """One delivery with its event and every attempt."""
        with self._db.read() as session:
            delivery, event = self._delivery(session, org_id, endpoint_id, delivery_id)
            attempts = list(
                session.execute(
                    sa.select(WebhookAttempt)
                    .where(WebhookAttempt.delivery_id == delivery.id)
                    .order_by(WebhookAttempt.id)
                ).scalars()
            )
            return _delivery_out(
                org_id_key(session, org_id),
                _Row(delivery, event.type),
                payload=event.payload,
                attempts=attempts,
            )

    @staticmethod
    def _delivery(
        session: Any, org_id: str, endpoint_id: str, delivery_id: str
    ) -> tuple[WebhookDelivery, WebhookEvent]:
        number = decode_public_id(org_id_key(session, org_id), IdKind.DELIVERY, delivery_id)
        if number is None:
            raise NotFoundError(N_("webhook delivery not found"))
        row = session.execute(
            sa.select(WebhookDelivery, WebhookEvent)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(
                WebhookDelivery.id == number,
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.org_id == org_id,
            )
        ).one_or_none()
        if row is None:
            raise NotFoundError(N_("webhook delivery not found"))
        return row[0], row[1]

    def redeliver(self, org_id: str, endpoint_id: str, delivery_id: str) -> WebhookDeliveryOut:
        """Queue the delivery's event again for this endpoint (same ``webhook-id``)."""
        now = self._clock.now()
        with self._db.transaction(urgent=True) as session:
            self._load(session, org_id, endpoint_id)
            _, event = self._delivery(session, org_id, endpoint_id, delivery_id)
            again = WebhookDelivery(
                org_id=org_id,
                endpoint_id=endpoint_id,
                event_id=event.id,
                # Sent by hand: it waits for nothing and holds nothing up.
                ordering_key=None,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            session.add(again)
            session.flush()
            return _delivery_out(org_id_key(session, org_id), _Row(again, event.type))

    def send_test(self, org_id: str, endpoint_id: str) -> WebhookDeliveryOut:
        """Queue a ``webhook.test`` event for this endpoint only."""
        now = self._clock.now()
        with self._db.transaction(urgent=True) as session:
            endpoint = self._load(session, org_id, endpoint_id)
            event = NewEvent(
                org_id=org_id,
                type=TEST_EVENT,
                occurred_at=now,
                data={"endpoint_id": endpoint.id, "message": "a test event from outbound"},
            )
            emit(session, [event], endpoints={org_id: [(endpoint.id, [TEST_EVENT])]})
            delivery = session.execute(
                sa.select(WebhookDelivery).where(WebhookDelivery.event_id == event.id)
            ).scalar_one()
            return _delivery_out(org_id_key(session, org_id), _Row(delivery, TEST_EVENT))

    def reencrypt_secrets(self) -> tuple[int, int]:
        """Re-encrypt every endpoint's secret under the first key: (re-encrypted, current)."""
        rotated = current = 0
        with self._db.transaction() as session:
            for endpoint in session.execute(
                self._db.for_update(sa.select(WebhookEndpoint))
            ).scalars():
                token = endpoint.secret_encrypted
                if self._secrets.is_current(token):
                    current += 1
                    continue
                try:
                    endpoint.secret_encrypted = self._secrets.rotate(token)
                except SecretKeyError as exc:
                    raise SecretKeyError(
                        f"the secret of webhook endpoint {endpoint.id} opens with none of the "
                        "keys; nothing was re-encrypted"
                    ) from exc
                rotated += 1
        return rotated, current


class _Row:
    """A delivery and its event's type, as :func:`_delivery_out` reads them."""

    def __init__(self, delivery: WebhookDelivery, event_type: str) -> None:
        self.id = delivery.id
        self.event_id = delivery.event_id
        self.type = event_type
        self.status = delivery.status
        self.attempts = delivery.attempts
        self.next_attempt_at: datetime | None = delivery.next_attempt_at
        self.last_status_code = delivery.last_status_code
        self.last_error = delivery.last_error
        self.created_at = delivery.created_at
        self.delivered_at = delivery.delivered_at
