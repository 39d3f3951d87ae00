"""Outbound configurations: which channel and template a send uses, and how.

A configuration may also carry a contact window (when its messages may reach a contact) and a
frequency cap (how many of its messages one contact may get per period); both are per
configuration, and both apply when a send is accepted (see :mod:`outbound.services.sending`).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Channel, Flow, OutboundConfiguration, Template
from outbound.clock import Clock
from outbound.domain.identifiers import canonical_guid
from outbound.domain.windows import ContactWindow, FrequencyCap
from outbound.errors import ConflictError, InvalidRequestError, NotFoundError
from outbound.schemas import (
    ConfigurationCreate,
    ConfigurationOut,
    ConfigurationUpdate,
    ContactWindowSpec,
    FrequencyCapSpec,
    Page,
)
from outbound.services.audit import diff, record_audit, snapshot
from outbound.services.auth import Principal
from outbound.services.pagination import fetch_page
from outbound.services.templates import normalise_locale_field
from outbound.texts import N_

__all__ = ["ConfigurationService", "contact_window_of", "frequency_cap_of"]


def contact_window_of(config: OutboundConfiguration) -> ContactWindow | None:
    """The configuration's contact window, or ``None`` when it has none."""
    if config.window_start is None or config.window_end is None:
        return None
    return ContactWindow.parse(config.window_start, config.window_end, config.window_days)


def frequency_cap_of(config: OutboundConfiguration) -> FrequencyCap | None:
    """The configuration's frequency cap, or ``None`` when it has none."""
    if config.cap_count is None or config.cap_period_seconds is None:
        return None
    return FrequencyCap(config.cap_count, config.cap_period_seconds)


def _set_window(config: OutboundConfiguration, window: ContactWindowSpec | None) -> None:
    config.window_start = window.start if window else None
    config.window_end = window.end if window else None
    config.window_days = list(window.days) if window and window.days is not None else None
    config.window_time_zone = window.time_zone if window else None


def _set_cap(config: OutboundConfiguration, cap: FrequencyCapSpec | None) -> None:
    config.cap_count = cap.count if cap else None
    config.cap_period_seconds = cap.period if cap else None


_AUDITED = (
    "name",
    "show_in_timeline",
    "channel_type",
    "channel_id",
    "template_id",
    "default_locale",
    "conversation_mode",
    "fallback_channel_id",
    "active",
    "window_start",
    "window_end",
    "window_days",
    "window_time_zone",
    "cap_count",
    "cap_period_seconds",
)


def _out(config: OutboundConfiguration) -> ConfigurationOut:
    window = None
    if config.window_start is not None and config.window_end is not None:
        window = ContactWindowSpec(
            start=config.window_start,
            end=config.window_end,
            days=config.window_days,
            time_zone=config.window_time_zone,
        )
    cap = None
    if config.cap_count is not None and config.cap_period_seconds is not None:
        cap = FrequencyCapSpec(count=config.cap_count, period=config.cap_period_seconds)
    return ConfigurationOut.model_validate(config).model_copy(
        update={"contact_window": window, "frequency_cap": cap}
    )


class ConfigurationService:
    """Create, read, update and delete outbound configurations."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    @staticmethod
    def _check_refs(
        session: Session, org_id: str, channel_type: str, channel_id: str, template_id: str
    ) -> None:
        channel = session.execute(
            sa.select(Channel.type).where(Channel.id == channel_id, Channel.org_id == org_id)
        ).one_or_none()
        if channel is None:
            raise InvalidRequestError(
                N_("no channel %(channel)r", channel=channel_id), field="channel_id"
            )
        template = session.execute(
            sa.select(Template.channel_type).where(
                Template.id == template_id, Template.org_id == org_id
            )
        ).one_or_none()
        if template is None:
            raise InvalidRequestError(
                N_("no template %(template)r", template=template_id), field="template_id"
            )
        if channel.type != channel_type:
            raise InvalidRequestError(
                N_(
                    "channel is of type %(channel_type)r but the configuration is "
                    "%(configuration_type)r",
                    channel_type=channel.type,
                    configuration_type=channel_type,
                ),
                field="channel_id",
                code="channel_type_mismatch",
            )
        if template.channel_type != channel_type:
            raise InvalidRequestError(
                N_(
                    "template is for %(template_type)r but the configuration is "
                    "%(configuration_type)r",
                    template_type=template.channel_type,
                    configuration_type=channel_type,
                ),
                field="template_id",
                code="channel_type_mismatch",
            )

    @staticmethod
    def _check_fallback(
        session: Session, org_id: str, channel_type: str, channel_id: str, fallback_id: str
    ) -> None:
        fallback = session.execute(
            sa.select(Channel.type, Channel.provider).where(
                Channel.id == fallback_id, Channel.org_id == org_id
            )
        ).one_or_none()
        if fallback is None:
            raise InvalidRequestError(
                N_("no channel %(channel)r", channel=fallback_id), field="fallback_channel_id"
            )
        primary_provider = session.execute(
            sa.select(Channel.provider).where(Channel.id == channel_id)
        ).scalar_one()
        if fallback.type != channel_type:
            raise InvalidRequestError(
                N_(
                    "fallback channel is of type %(fallback_type)r, not %(configuration_type)r",
                    fallback_type=fallback.type,
                    configuration_type=channel_type,
                ),
                field="fallback_channel_id",
                code="channel_type_mismatch",
            )
        if fallback.provider == primary_provider:
            raise InvalidRequestError(
                N_("the fallback channel must use another provider than the channel"),
                field="fallback_channel_id",
            )

    @staticmethod
    def load(session: Session, org_id: str, config_id: str) -> OutboundConfiguration:
        """The configuration, by its id in any case, with or without braces (as Dynamics 365
        writes GUIDs)."""
        config = session.execute(
            sa.select(OutboundConfiguration).where(
                OutboundConfiguration.id == canonical_guid(config_id),
                OutboundConfiguration.org_id == org_id,
            )
        ).scalar_one_or_none()
        if config is None:
            raise NotFoundError(
                N_("no outbound configuration %(configuration)r", configuration=config_id)
            )
        return config

    def create(
        self, org_id: str, data: ConfigurationCreate, *, by: Principal | None = None
    ) -> ConfigurationOut:
        default_locale = (
            normalise_locale_field(data.default_locale, "default_locale")
            if data.default_locale
            else None
        )
        now = self._clock.now()
        config = OutboundConfiguration(
            org_id=org_id,
            name=data.name,
            show_in_timeline=data.show_in_timeline,
            channel_type=data.channel_type.value,
            channel_id=data.channel_id,
            template_id=data.template_id,
            default_locale=default_locale,
            conversation_mode=data.conversation_mode.value,
            fallback_channel_id=data.fallback_channel_id,
            active=data.active,
            allow_duplicate_numbers=data.allow_duplicate_numbers,
            created_at=now,
            updated_at=now,
        )
        _set_window(config, data.contact_window)
        _set_cap(config, data.frequency_cap)
        with self._db.transaction() as session:
            self._check_refs(
                session, org_id, data.channel_type.value, data.channel_id, data.template_id
            )
            if data.fallback_channel_id:
                self._check_fallback(
                    session,
                    org_id,
                    data.channel_type.value,
                    data.channel_id,
                    data.fallback_channel_id,
                )
            session.add(config)
            session.flush()
            changes = diff({}, snapshot(config, _AUDITED))
            record_audit(
                session,
                org_id,
                by,
                "configuration.created",
                "configuration",
                config.id,
                now,
                changes=changes,
            )
        return _out(config)

    def get(self, org_id: str, config_id: str) -> ConfigurationOut:
        with self._db.read() as session:
            return _out(self.load(session, org_id, config_id))

    def list(self, org_id: str, cursor: str | None, limit: int) -> Page[ConfigurationOut]:
        return fetch_page(
            self._db,
            sa.select(OutboundConfiguration).where(OutboundConfiguration.org_id == org_id),
            OutboundConfiguration.created_at,
            OutboundConfiguration.id,
            cursor,
            limit,
            _out,
        )

    def update(
        self,
        org_id: str,
        config_id: str,
        data: ConfigurationUpdate,
        *,
        by: Principal | None = None,
    ) -> ConfigurationOut:
        with self._db.transaction() as session:
            config = self.load(session, org_id, config_id)
            before = snapshot(config, _AUDITED)
            # Check the references before changing the row: the checks' queries would
            # otherwise flush a dangling reference and fail on the foreign key.
            self._check_refs(
                session,
                org_id,
                config.channel_type,
                data.channel_id or config.channel_id,
                data.template_id or config.template_id,
            )
            if data.name is not None:
                config.name = data.name
            if data.show_in_timeline is not None:
                config.show_in_timeline = data.show_in_timeline
            if data.channel_id is not None:
                config.channel_id = data.channel_id
            if data.template_id is not None:
                config.template_id = data.template_id
            if "default_locale" in data.model_fields_set:
                config.default_locale = (
                    normalise_locale_field(data.default_locale, "default_locale")
                    if data.default_locale
                    else None
                )
            if data.conversation_mode is not None:
                config.conversation_mode = data.conversation_mode.value
            if data.active is not None:
                config.active = data.active
            if data.allow_duplicate_numbers is not None:
                config.allow_duplicate_numbers = data.allow_duplicate_numbers
            # Null clears; an object replaces the whole window (or cap), it is not merged.
            if "contact_window" in data.model_fields_set:
                _set_window(config, data.contact_window)
            if "frequency_cap" in data.model_fields_set:
                _set_cap(config, data.frequency_cap)
            if "fallback_channel_id" in data.model_fields_set:
                if data.fallback_channel_id:
                    self._check_fallback(
                        session,
                        org_id,
                        config.channel_type,
                        data.channel_id or config.channel_id,
                        data.fallback_channel_id,
                    )
                config.fallback_channel_id = data.fallback_channel_id
            elif data.channel_id is not None and config.fallback_channel_id:
                # A new channel must still differ from the fallback (and its provider).
                self._check_fallback(
                    session,
                    org_id,
                    config.channel_type,
                    data.channel_id,
                    config.fallback_channel_id,
                )
            config.updated_at = now = self._clock.now()
            changes = diff(before, snapshot(config, _AUDITED))
            record_audit(
                session,
                org_id,
                by,
                "configuration.updated",
                "configuration",
                config.id,
                now,
                changes=changes,
            )
        return _out(config)

    def delete(self, org_id: str, config_id: str, *, by: Principal | None = None) -> None:
        with self._db.transaction() as session:
            config = self.load(session, org_id, config_id)
            flows = list(
                session.execute(
                    sa.select(Flow.name)
                    .where(Flow.org_id == org_id, Flow.configuration_id == config.id)
                    .order_by(Flow.name)
                ).scalars()
            )
            if flows:
                names: str = ", ".join(flows[:10])
                if len(flows) > 10:
                    names = N_("%(names)s and %(count)s more", names=names, count=len(flows) - 10)
                raise ConflictError(
                    N_(
                        "flows send with this configuration: %(flows)s; delete them or point "
                        "them at another configuration first",
                        flows=names,
                    ),
                    field="configuration_id",
                    code="configuration_in_use",
                )
            changes = diff(snapshot(config, _AUDITED), {})
            record_audit(
                session,
                org_id,
                by,
                "configuration.deleted",
                "configuration",
                config.id,
                self._clock.now(),
                changes=changes,
            )
            session.delete(config)
