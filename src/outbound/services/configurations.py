"""Outbound configurations: which channel and template a send uses, and how."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Channel, OutboundConfiguration, Template
from outbound.clock import Clock
from outbound.errors import InvalidRequestError, NotFoundError
from outbound.schemas import (
    ConfigurationCreate,
    ConfigurationOut,
    ConfigurationUpdate,
    Page,
)
from outbound.services.pagination import fetch_page
from outbound.services.templates import normalise_locale_field

__all__ = ["ConfigurationService"]


def _out(config: OutboundConfiguration) -> ConfigurationOut:
    return ConfigurationOut.model_validate(config)


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
            raise InvalidRequestError(f"no channel {channel_id!r}", field="channel_id")
        template = session.execute(
            sa.select(Template.channel_type).where(
                Template.id == template_id, Template.org_id == org_id
            )
        ).one_or_none()
        if template is None:
            raise InvalidRequestError(f"no template {template_id!r}", field="template_id")
        if channel.type != channel_type:
            raise InvalidRequestError(
                f"channel is of type {channel.type!r} but the configuration is {channel_type!r}",
                field="channel_id",
                code="channel_type_mismatch",
            )
        if template.channel_type != channel_type:
            raise InvalidRequestError(
                f"template is for {template.channel_type!r} but the configuration is "
                f"{channel_type!r}",
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
            raise InvalidRequestError(f"no channel {fallback_id!r}", field="fallback_channel_id")
        primary_provider = session.execute(
            sa.select(Channel.provider).where(Channel.id == channel_id)
        ).scalar_one()
        if fallback.type != channel_type:
            raise InvalidRequestError(
                f"fallback channel is of type {fallback.type!r}, not {channel_type!r}",
                field="fallback_channel_id",
                code="channel_type_mismatch",
            )
        if fallback.provider == primary_provider:
            raise InvalidRequestError(
                "the fallback channel must use another provider than the channel",
                field="fallback_channel_id",
            )

    @staticmethod
    def load(session: Session, org_id: str, config_id: str) -> OutboundConfiguration:
        config = session.execute(
            sa.select(OutboundConfiguration).where(
                OutboundConfiguration.id == config_id, OutboundConfiguration.org_id == org_id
            )
        ).scalar_one_or_none()
        if config is None:
            raise NotFoundError(f"no outbound configuration {config_id!r}")
        return config

    def create(self, org_id: str, data: ConfigurationCreate) -> ConfigurationOut:
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
            created_at=now,
            updated_at=now,
        )
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

    def update(self, org_id: str, config_id: str, data: ConfigurationUpdate) -> ConfigurationOut:
        with self._db.transaction() as session:
            config = self.load(session, org_id, config_id)
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
            config.updated_at = self._clock.now()
        return _out(config)

    def delete(self, org_id: str, config_id: str) -> None:
        with self._db.transaction() as session:
            session.delete(self.load(session, org_id, config_id))
