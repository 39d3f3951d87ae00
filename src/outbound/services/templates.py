"""Message templates: validated on save, previewed with values, protected while in use."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import OutboundConfiguration, Template
from outbound.clock import Clock
from outbound.domain.encoding import sms_info
from outbound.domain.locales import choose_text, normalize_locale
from outbound.domain.templates import parse_template, render
from outbound.errors import (
    ConflictError,
    InvalidLocaleError,
    InvalidRequestError,
    MissingPlaceholderError,
    NotFoundError,
    TemplateSyntaxError,
)
from outbound.schemas import (
    LOCALIZED_TEXT_LIMIT,
    Page,
    PreviewIn,
    PreviewOut,
    TemplateCreate,
    TemplateOut,
    TemplateUpdate,
)
from outbound.services.pagination import fetch_page

__all__ = ["TemplateService", "normalise_locale_field", "template_out"]


def normalise_locale_field(value: str | int, field: str) -> str:
    try:
        return normalize_locale(value)
    except InvalidLocaleError as exc:
        raise InvalidRequestError(
            f"{value!r} is not a BCP-47 language tag or Windows LCID", field=field
        ) from exc


def _check_text(text: str, field: str) -> list[str]:
    try:
        return list(parse_template(text).placeholders)
    except TemplateSyntaxError as exc:
        raise InvalidRequestError(
            f"malformed template: {exc}",
            field=field,
            code="invalid_template",
            details={"position": exc.position},
        ) from exc


def _normalise_localizations(values: dict[str, str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for raw_tag, text in values.items():
        field = f"localizations.{raw_tag}"
        tag = normalise_locale_field(raw_tag, field)
        if tag in result:
            raise InvalidRequestError(f"locale {tag} is given twice", field=field)
        if not text.strip():
            raise InvalidRequestError("text must not be empty", field=field)
        if len(text) > LOCALIZED_TEXT_LIMIT:
            raise InvalidRequestError(
                f"text is {len(text)} characters; the limit is {LOCALIZED_TEXT_LIMIT}", field=field
            )
        _check_text(text, field)
        result[tag] = text
    return result


def template_out(template: Template) -> TemplateOut:
    placeholders: list[str] = []
    for text in [template.default_text, *template.localizations.values()]:
        for key in parse_template(text).placeholders:
            if key not in placeholders:
                placeholders.append(key)
    data: dict[str, Any] = {
        c: getattr(template, c) for c in TemplateOut.model_fields if hasattr(template, c)
    }
    data["placeholders"] = placeholders
    return TemplateOut.model_validate(data)


class TemplateService:
    """Create, read, update, delete and preview an organisation's templates."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def create(self, org_id: str, data: TemplateCreate) -> TemplateOut:
        default_locale = normalise_locale_field(data.default_locale, "default_locale")
        _check_text(data.default_text, "default_text")
        localizations = _normalise_localizations(data.localizations)
        now = self._clock.now()
        template = Template(
            org_id=org_id,
            name=data.name,
            channel_type=data.channel_type.value,
            default_locale=default_locale,
            default_text=data.default_text,
            localizations=localizations,
            content_sid=data.content_sid,
            created_at=now,
            updated_at=now,
        )
        with self._db.transaction() as session:
            self._check_unique_name(session, org_id, data.name, None)
            session.add(template)
        return template_out(template)

    @staticmethod
    def _check_unique_name(
        session: Session, org_id: str, name: str, template_id: str | None
    ) -> None:
        query = sa.select(Template.id).where(Template.org_id == org_id, Template.name == name)
        if template_id is not None:
            query = query.where(Template.id != template_id)
        if session.execute(query).first() is not None:
            raise ConflictError(
                f"a template named {name!r} already exists", field="name", code="duplicate_name"
            )

    @staticmethod
    def load(session: Session, org_id: str, template_id: str) -> Template:
        template = session.execute(
            sa.select(Template).where(Template.id == template_id, Template.org_id == org_id)
        ).scalar_one_or_none()
        if template is None:
            raise NotFoundError(f"no template {template_id!r}")
        return template

    def get(self, org_id: str, template_id: str) -> TemplateOut:
        with self._db.read() as session:
            return template_out(self.load(session, org_id, template_id))

    def list(self, org_id: str, cursor: str | None, limit: int) -> Page[TemplateOut]:
        return fetch_page(
            self._db,
            sa.select(Template).where(Template.org_id == org_id),
            Template.created_at,
            Template.id,
            cursor,
            limit,
            template_out,
        )

    def update(self, org_id: str, template_id: str, data: TemplateUpdate) -> TemplateOut:
        default_locale = (
            normalise_locale_field(data.default_locale, "default_locale")
            if data.default_locale is not None
            else None
        )
        if data.default_text is not None:
            _check_text(data.default_text, "default_text")
        localizations = (
            _normalise_localizations(data.localizations) if data.localizations is not None else None
        )
        with self._db.transaction() as session:
            template = self.load(session, org_id, template_id)
            if data.name is not None:
                self._check_unique_name(session, org_id, data.name, template.id)
                template.name = data.name
            if default_locale is not None:
                template.default_locale = default_locale
            if data.default_text is not None:
                template.default_text = data.default_text
            if localizations is not None:
                template.localizations = localizations
            if "content_sid" in data.model_fields_set:
                template.content_sid = data.content_sid
            template.updated_at = self._clock.now()
        return template_out(template)

    def delete(self, org_id: str, template_id: str) -> None:
        with self._db.transaction() as session:
            template = self.load(session, org_id, template_id)
            users = session.execute(
                sa.select(OutboundConfiguration.id, OutboundConfiguration.name)
                .where(OutboundConfiguration.template_id == template.id)
                .order_by(OutboundConfiguration.name)
            ).all()
            if users:
                names = ", ".join(f"{u.name} ({u.id})" for u in users)
                raise ConflictError(
                    f"template is used by outbound configurations: {names}",
                    code="template_in_use",
                    details={"configurations": [{"id": u.id, "name": u.name} for u in users]},
                )
            session.delete(template)

    def preview(self, org_id: str, template_id: str, data: PreviewIn) -> PreviewOut:
        with self._db.read() as session:
            template = self.load(session, org_id, template_id)
        requested = normalise_locale_field(data.locale, "locale") if data.locale else None
        chosen = choose_text(
            requested=requested,
            localizations=template.localizations,
            template_default_locale=template.default_locale,
            template_default_text=template.default_text,
            configuration_default_locale=None,
        )
        try:
            text = render(chosen.text, data.values)
        except MissingPlaceholderError as exc:
            raise InvalidRequestError(
                f"no value for placeholder {exc.key!r}",
                field=f"values.{exc.key}",
                code="missing_placeholder",
            ) from exc
        info = sms_info(text)
        return PreviewOut(
            locale=chosen.locale,
            match=chosen.match,
            text=text,
            encoding=info.encoding.value,
            segments=info.segments,
            characters=info.characters,
            units=info.units,
        )
