"""Message templates: validated on save, versioned, previewed with values, protected while in use.

Every change that alters a template stores a new :class:`TemplateVersion` (its texts, Content
SIDs, fallbacks, who and when); messages record the version they were rendered from. A change
that adds a placeholder answers with a warning naming the configurations and flows whose
requests lack it and will be rejected; ``dry_run`` answers the same without saving.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Flow, OutboundConfiguration, Template, TemplateVersion
from outbound.clock import Clock
from outbound.domain.encoding import sms_info
from outbound.domain.flow_definitions import FlowDefinition
from outbound.domain.locales import choose_text, language_of, normalize_locale
from outbound.domain.recipients import provided_context_keys
from outbound.domain.templates import parse_template, render
from outbound.errors import (
    ConflictError,
    InvalidLocaleError,
    InvalidRequestError,
    MissingPlaceholderError,
    NotFoundError,
    TemplateSyntaxError,
    message_of,
)
from outbound.schemas import (
    LOCALIZED_TEXT_LIMIT,
    LocaleChoice,
    NamedRef,
    Page,
    PreviewIn,
    PreviewOut,
    TemplateChangeOut,
    TemplateCreate,
    TemplateOut,
    TemplateUpdate,
    TemplateVersionOut,
    TemplateWarning,
)
from outbound.services.audit import diff, record_audit, snapshot
from outbound.services.auth import Principal
from outbound.services.pagination import fetch_page
from outbound.texts import N_

__all__ = ["TemplateService", "normalise_locale_field", "placeholders_of", "template_out"]


def normalise_locale_field(value: str | int, field: str) -> str:
    try:
        return normalize_locale(value)
    except InvalidLocaleError as exc:
        raise InvalidRequestError(
            N_("%(value)r is not a BCP-47 language tag or Windows LCID", value=value), field=field
        ) from exc


def _check_text(text: str, field: str) -> list[str]:
    try:
        return list(parse_template(text).placeholders)
    except TemplateSyntaxError as exc:
        raise InvalidRequestError(
            N_("malformed template: %(error)s", error=message_of(exc)),
            field=field,
            code="invalid_template",
            details={"position": exc.position},
        ) from exc


def _normalise_localizations(values: dict[str, str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for raw_tag, text in values.items():
        field_name = f"localizations.{raw_tag}"
        tag = normalise_locale_field(raw_tag, field_name)
        if tag in result:
            raise InvalidRequestError(
                N_("locale %(tag)s is given twice", tag=tag), field=field_name
            )
        if not text.strip():
            raise InvalidRequestError(N_("text must not be empty"), field=field_name)
        if len(text) > LOCALIZED_TEXT_LIMIT:
            raise InvalidRequestError(
                N_(
                    "text is %(length)s characters; the limit is %(limit)s",
                    length=len(text),
                    limit=LOCALIZED_TEXT_LIMIT,
                ),
                field=field_name,
            )
        _check_text(text, field_name)
        result[tag] = text
    return result


def _normalise_locale_keys(values: Mapping[str, str], name: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for raw_tag, value in values.items():
        field_name = f"{name}.{raw_tag}"
        tag = normalise_locale_field(raw_tag, field_name)
        if tag in result:
            raise InvalidRequestError(
                N_("locale %(tag)s is given twice", tag=tag), field=field_name
            )
        result[tag] = value
    return result


@dataclass(frozen=True)
class _State:
    """What a version holds."""

    name: str
    default_locale: str
    default_text: str
    localizations: dict[str, str]
    content_sid: str | None
    content_sids: dict[str, str] = field(default_factory=dict)
    fallbacks: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, row: Template | TemplateVersion) -> _State:
        return cls(
            name=row.name,
            default_locale=row.default_locale,
            default_text=row.default_text,
            localizations=dict(row.localizations),
            content_sid=row.content_sid,
            content_sids=dict(row.content_sids or {}),
            fallbacks=dict(row.fallbacks or {}),
        )

    def check(self) -> None:
        """Content SIDs name localizations; fallbacks lead from a locale without a text to
        one with a text."""
        texts = {self.default_locale, *self.localizations}
        for tag, sid in self.content_sids.items():
            field_name = f"content_sids.{tag}"
            if tag == self.default_locale:
                raise InvalidRequestError(
                    N_("the default locale's approved template is content_sid"), field=field_name
                )
            if tag not in self.localizations:
                raise InvalidRequestError(
                    N_("the template has no %(tag)s text", tag=tag), field=field_name
                )
            if not sid.strip() or len(sid) > 64:
                raise InvalidRequestError(N_("must be 1 to 64 characters"), field=field_name)
        for tag, target in self.fallbacks.items():
            field_name = f"fallbacks.{tag}"
            if tag in texts:
                raise InvalidRequestError(
                    N_("%(tag)s has a text of its own: a fallback would never be used", tag=tag),
                    field=field_name,
                )
            if target not in texts:
                raise InvalidRequestError(
                    N_("the template has no %(tag)s text", tag=target), field=field_name
                )

    def as_row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "default_locale": self.default_locale,
            "default_text": self.default_text,
            "localizations": dict(self.localizations),
            "content_sid": self.content_sid,
            "content_sids": dict(self.content_sids),
            "fallbacks": dict(self.fallbacks),
        }


def placeholders_of(default_text: str, localizations: Mapping[str, str]) -> list[str]:
    """The placeholder keys of all texts, in order of first appearance."""
    placeholders: list[str] = []
    for text in [default_text, *localizations.values()]:
        for key in parse_template(text).placeholders:
            if key not in placeholders:
                placeholders.append(key)
    return placeholders


def template_out(template: Template) -> TemplateOut:
    data: dict[str, Any] = {
        c: getattr(template, c) for c in TemplateOut.model_fields if hasattr(template, c)
    }
    data["placeholders"] = placeholders_of(template.default_text, template.localizations)
    data["content_sids"] = dict(template.content_sids or {})
    data["fallbacks"] = dict(template.fallbacks or {})
    return TemplateOut.model_validate(data)


def version_out(row: TemplateVersion) -> TemplateVersionOut:
    data: dict[str, Any] = {
        c: getattr(row, c) for c in TemplateVersionOut.model_fields if hasattr(row, c)
    }
    data["placeholders"] = placeholders_of(row.default_text, row.localizations)
    return TemplateVersionOut.model_validate(data)


class TemplateService:
    """Create, read, update, delete, version and preview an organisation's templates."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def create(
        self,
        org_id: str,
        data: TemplateCreate,
        *,
        key_id: str | None = None,
        user_id: str | None = None,
        by: Principal | None = None,
    ) -> TemplateOut:
        if by is not None:
            key_id, user_id = by.key_id, by.user_id
        _check_text(data.default_text, "default_text")
        state = _State(
            name=data.name,
            default_locale=normalise_locale_field(data.default_locale, "default_locale"),
            default_text=data.default_text,
            localizations=_normalise_localizations(data.localizations),
            content_sid=data.content_sid,
            content_sids=_normalise_locale_keys(data.content_sids, "content_sids"),
            fallbacks=self._fallbacks(data.fallbacks),
        )
        state.check()
        now = self._clock.now()
        template = Template(
            org_id=org_id,
            channel_type=data.channel_type.value,
            version=1,
            created_at=now,
            updated_at=now,
            **state.as_row(),
        )
        with self._db.transaction() as session:
            self._check_unique_name(session, org_id, data.name, None)
            session.add(template)
            session.flush()
            self._add_version(session, template, state, key_id, user_id, now)
            record_audit(
                session,
                org_id,
                by,
                "template.created",
                "template",
                template.id,
                now,
                changes=diff({}, {"channel_type": template.channel_type, **asdict(state)}),
                key_id=key_id,
                user_id=user_id,
            )
        return template_out(template)

    @staticmethod
    def _fallbacks(values: Mapping[str, str]) -> dict[str, str]:
        keyed = _normalise_locale_keys(values, "fallbacks")
        return {
            tag: normalise_locale_field(target, f"fallbacks.{tag}") for tag, target in keyed.items()
        }

    @staticmethod
    def _add_version(
        session: Session,
        template: Template,
        state: _State,
        key_id: str | None,
        user_id: str | None,
        now: Any,
    ) -> None:
        session.add(
            TemplateVersion(
                template_id=template.id,
                version=template.version,
                org_id=template.org_id,
                created_by_key_id=key_id,
                created_by_user_id=user_id,
                created_at=now,
                **state.as_row(),
            )
        )

    @staticmethod
    def _check_unique_name(
        session: Session, org_id: str, name: str, template_id: str | None
    ) -> None:
        query = sa.select(Template.id).where(Template.org_id == org_id, Template.name == name)
        if template_id is not None:
            query = query.where(Template.id != template_id)
        if session.execute(query).first() is not None:
            raise ConflictError(
                N_("a template named %(name)r already exists", name=name),
                field="name",
                code="duplicate_name",
            )

    @staticmethod
    def load(session: Session, org_id: str, template_id: str) -> Template:
        template = session.execute(
            sa.select(Template).where(Template.id == template_id, Template.org_id == org_id)
        ).scalar_one_or_none()
        if template is None:
            raise NotFoundError(N_("no template %(template)r", template=template_id))
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

    def versions(self, org_id: str, template_id: str) -> Sequence[TemplateVersionOut]:
        """Every version of a template, the latest first."""
        with self._db.read() as session:
            template = self.load(session, org_id, template_id)
            rows = session.execute(
                sa.select(TemplateVersion)
                .where(TemplateVersion.template_id == template.id)
                .order_by(TemplateVersion.version.desc())
            ).scalars()
            return [version_out(row) for row in rows]

    def update(
        self,
        org_id: str,
        template_id: str,
        data: TemplateUpdate,
        *,
        dry_run: bool = False,
        key_id: str | None = None,
        user_id: str | None = None,
        by: Principal | None = None,
    ) -> TemplateChangeOut:
        if by is not None:
            key_id, user_id = by.key_id, by.user_id
        changes: dict[str, Any] = {}
        if data.name is not None:
            changes["name"] = data.name
        if data.default_locale is not None:
            changes["default_locale"] = normalise_locale_field(
                data.default_locale, "default_locale"
            )
        if data.default_text is not None:
            _check_text(data.default_text, "default_text")
            changes["default_text"] = data.default_text
        if data.localizations is not None:
            changes["localizations"] = _normalise_localizations(data.localizations)
        if "content_sid" in data.model_fields_set:
            changes["content_sid"] = data.content_sid
        if data.content_sids is not None:
            changes["content_sids"] = _normalise_locale_keys(data.content_sids, "content_sids")
        if data.fallbacks is not None:
            changes["fallbacks"] = self._fallbacks(data.fallbacks)
        with self._db.transaction() as session:
            template = self.load(session, org_id, template_id)
            before = _State.of(template)
            after = replace(before, **changes)
            after.check()
            if after.name != before.name:
                self._check_unique_name(session, org_id, after.name, template.id)
            added = self._added_placeholders(before, after)
            warning = self._new_placeholder_warning(session, template, added) if added else None
            warnings = [warning] if warning is not None else []
            out = template_out(template).model_dump()
            if dry_run or after == before:
                out |= after.as_row()
                out["placeholders"] = placeholders_of(after.default_text, after.localizations)
                if dry_run and after != before:
                    out["version"] = template.version + 1
                # Nothing is written: the transaction ends without a change.
                session.expunge(template)
                return TemplateChangeOut(**out, dry_run=dry_run, warnings=warnings)
            now = self._clock.now()
            for name, value in after.as_row().items():
                setattr(template, name, value)
            template.version += 1
            template.updated_at = now
            self._add_version(session, template, after, key_id, user_id, now)
            record_audit(
                session,
                org_id,
                by,
                "template.updated",
                "template",
                template.id,
                now,
                changes=diff(asdict(before), asdict(after)),
                key_id=key_id,
                user_id=user_id,
            )
            session.flush()
            result = template_out(template)
        return TemplateChangeOut(**result.model_dump(), warnings=warnings)

    @staticmethod
    def _added_placeholders(before: _State, after: _State) -> Sequence[str]:
        """Placeholders of the new texts that no old text had (compared as values are
        matched: exactly, else in any ASCII case)."""
        old = {k.lower() for k in placeholders_of(before.default_text, before.localizations)}
        return [
            key
            for key in placeholders_of(after.default_text, after.localizations)
            if key.lower() not in old
        ]

    @staticmethod
    def _new_placeholder_warning(
        session: Session, template: Template, added: Sequence[str]
    ) -> TemplateWarning | None:
        """Who sends with this template and will now be refused for the new placeholders:
        every configuration (integrations' requests are not known in advance), and the flows
        of those configurations whose mapping does not fill them. None when nothing uses it."""
        configurations = session.execute(
            sa.select(OutboundConfiguration.id, OutboundConfiguration.name)
            .where(
                OutboundConfiguration.org_id == template.org_id,
                OutboundConfiguration.template_id == template.id,
            )
            .order_by(OutboundConfiguration.name)
        ).all()
        if not configurations:
            return None
        flows: list[NamedRef] = []
        if configurations:
            rows = session.execute(
                sa.select(Flow)
                .where(
                    Flow.org_id == template.org_id,
                    Flow.configuration_id.in_([c.id for c in configurations]),
                )
                .order_by(Flow.name)
            ).scalars()
            wanted = {key.lower() for key in added}
            for flow in rows:
                definition = FlowDefinition.from_dict(flow.definition)
                recipient = definition.recipient
                if recipient.get("sendastemplate") is True and recipient.get("templateparameters"):
                    continue  # an approved template's parameters stand for the text
                provided = provided_context_keys(
                    recipient,
                    case_records=definition.source_records == "cases"
                    or (flow.event_type or "").startswith("case."),
                )
                if wanted - provided:
                    flows.append(NamedRef(id=flow.id, name=flow.name))
        names = ", ".join(f"{{{key}}}" for key in added)
        return TemplateWarning(
            code="new_placeholder",
            message=(
                f"{names} is new: contacts without a value for it will be rejected "
                f"(missing_placeholder) by {len(configurations)} configuration(s) "
                f"and {len(flows)} flow(s)"
            ),
            placeholders=added,
            configurations=[NamedRef(id=c.id, name=c.name) for c in configurations],
            flows=flows,
        )

    def delete(self, org_id: str, template_id: str, *, by: Principal | None = None) -> None:
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
                    N_("template is used by outbound configurations: %(names)s", names=names),
                    code="template_in_use",
                    details={"configurations": [{"id": u.id, "name": u.name} for u in users]},
                )
            session.execute(
                sa.delete(TemplateVersion).where(TemplateVersion.template_id == template.id)
            )
            record_audit(
                session,
                org_id,
                by,
                "template.deleted",
                "template",
                template.id,
                self._clock.now(),
                changes=diff(snapshot(template, ("name", "channel_type", "version")), {}),
            )
            session.delete(template)

    def preview(self, org_id: str, template_id: str, data: PreviewIn) -> PreviewOut:
        with self._db.read() as session:
            template = self.load(session, org_id, template_id)
        requested = normalise_locale_field(data.locale, "locale") if data.locale else None

        def choose(tag: str | None) -> Any:
            return choose_text(
                requested=tag,
                localizations=template.localizations,
                template_default_locale=template.default_locale,
                template_default_text=template.default_text,
                configuration_default_locale=None,
                fallbacks=template.fallbacks,
            )

        chosen = choose(requested)
        try:
            text = render(chosen.text, data.values)
        except MissingPlaceholderError as exc:
            raise InvalidRequestError(
                N_("no value for placeholder %(key)r", key=exc.key),
                field=f"values.{exc.key}",
                code="missing_placeholder",
            ) from exc
        if data.locales:
            shown = [
                normalise_locale_field(tag, f"locales.{i}") for i, tag in enumerate(data.locales)
            ]
        else:
            own = [template.default_locale, *template.localizations]
            shown = [*own, *(language_of(tag) for tag in own), *template.fallbacks]
            if requested is not None:
                shown.insert(0, requested)
        choices = []
        for tag in dict.fromkeys(shown):
            result = choose(tag)
            choices.append(LocaleChoice(requested=tag, locale=result.locale, match=result.match))
        info = sms_info(text)
        return PreviewOut(
            locale=chosen.locale,
            match=chosen.match,
            text=text,
            encoding=info.encoding.value,
            segments=info.segments,
            characters=info.characters,
            units=info.units,
            choices=choices,
        )
