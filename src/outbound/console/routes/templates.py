"""Templates: the list, one template's form (default text and one tab per language) with a
live count of characters and segments, where it is used, and deleting it.

The form names each language's fields ``loc-N-locale`` and ``loc-N-text`` (``N`` its tab);
the last tab adds a language. Saving goes through :class:`TemplateService`, so the rules
are the API's: an error comes back next to its field, the text kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from outbound.console.access import CONSOLE_KEY_ID, Viewer, console_router, state_of, viewer_of
from outbound.console.i18n import Translator, validation_text
from outbound.console.nav import ADMINS
from outbound.console.rendering import render
from outbound.domain.encoding import sms_info
from outbound.domain.templates import parse_template
from outbound.errors import ConflictError, InvalidRequestError, TemplateSyntaxError
from outbound.schemas import ConfigurationOut, TemplateCreate, TemplateOut, TemplateUpdate

__all__ = ["COMMON_LOCALES", "router"]

COMMON_LOCALES = ("en-US", "en-GB", "fr-FR", "fr-CA", "de-DE", "es-ES", "it-IT", "nl-NL", "pt-BR")
"""Offered as suggestions; any BCP-47 tag or Windows LCID is accepted."""
MAX_LANGUAGES = 50
_LOC_FIELD = re.compile(r"^loc-(\d{1,3})-(locale|text|remove)$")

router = console_router()


@dataclass
class TemplateForm:
    """What the form shows: the values typed, and the errors per field name."""

    name: str = ""
    channel_type: str = "sms"
    default_locale: str = "en-US"
    default_text: str = ""
    content_sid: str = ""
    localizations: list[tuple[str, str]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, template: TemplateOut) -> TemplateForm:
        return cls(
            name=template.name,
            channel_type=template.channel_type.value,
            default_locale=template.default_locale,
            default_text=template.default_text,
            content_sid=template.content_sid or "",
            localizations=list(template.localizations.items()),
        )

    @classmethod
    def read(cls, form: FormData) -> TemplateForm:
        def text(name: str) -> str:
            value = form.get(name)
            return value if isinstance(value, str) else ""

        rows: dict[int, dict[str, str]] = {}
        for key in form:
            match = _LOC_FIELD.match(key)
            if match:
                rows.setdefault(int(match.group(1)), {})[match.group(2)] = text(key)
        localizations = [
            (row.get("locale", "").strip(), row.get("text", ""))
            for _index, row in sorted(rows.items())[:MAX_LANGUAGES]
            if not row.get("remove") and (row.get("locale", "").strip() or row.get("text"))
        ]
        return cls(
            name=text("name").strip(),
            channel_type=text("channel_type") or "sms",
            default_locale=text("default_locale").strip(),
            default_text=text("default_text"),
            content_sid=text("content_sid").strip(),
            localizations=localizations,
        )

    def field_of(self, api_field: str | None) -> str:
        """The form field an error of the service names (``localizations.fr-FR`` → its tab)."""
        if api_field and api_field.startswith("localizations."):
            tag = api_field.split(".", 1)[1]
            for index, (locale, _text) in enumerate(self.localizations):
                if locale == tag:
                    return f"loc-{index}-text"
            return f"loc-{len(self.localizations) - 1}-locale"
        return api_field or ""

    def payload(self, t: Translator) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "default_locale": self.default_locale,
            "default_text": self.default_text,
            "content_sid": self.content_sid or None,
        }
        localizations: dict[str, str] = {}
        for index, (locale, text) in enumerate(self.localizations):
            if not locale:
                self.errors[f"loc-{index}-locale"] = t.gettext(
                    "Give the language of this text (fr-FR)."
                )
            elif locale in localizations:
                self.errors[f"loc-{index}-locale"] = t.gettext("This language is there already.")
            localizations[locale] = text
        data["localizations"] = localizations
        return data


def _validation_errors(exc: ValidationError, form: TemplateForm) -> None:
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        name = loc[0] if loc else ""
        if name == "localizations" and len(loc) > 1:
            name = f"localizations.{loc[1]}"
        form.errors[form.field_of(name)] = validation_text(error)


def _usage(request: Request, who: Viewer, template_id: str) -> list[ConfigurationOut]:
    c = request.app.state.container
    configurations: list[ConfigurationOut] = c.configurations.list(who.org_id, None, 500).data
    return [config for config in configurations if config.template_id == template_id]


def _page(
    request: Request,
    form: TemplateForm,
    *,
    template: TemplateOut | None,
    used_by: list[ConfigurationOut] | None = None,
    status: int = 200,
    notice: str | None = None,
) -> Response:
    return render(
        request,
        "template_form.html",
        {
            "form": form,
            "template": template,
            "used_by": used_by or [],
            "locales": COMMON_LOCALES,
            "notice": notice,
            "counters": {
                "default_text": counter(form.default_text),
                **{
                    f"loc-{index}-text": counter(text)
                    for index, (_locale, text) in enumerate(form.localizations)
                },
            },
        },
        status=status,
    )


@router.get("/templates")
def list_templates(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    c = request.app.state.container
    templates: list[TemplateOut] = c.templates.list(who.org_id, None, 500).data
    configurations: list[ConfigurationOut] = c.configurations.list(who.org_id, None, 500).data
    used: dict[str, int] = {}
    for config in configurations:
        used[config.template_id] = used.get(config.template_id, 0) + 1
    return render(request, "templates.html", {"templates": templates, "used": used})


@router.get("/templates/new")
def new_template(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    return _page(request, TemplateForm(), template=None)


@dataclass(frozen=True)
class Counter:
    """What the live preview says of a text."""

    encoding: str = ""
    characters: int = 0
    segments: int = 0
    placeholders: tuple[str, ...] = ()
    error: str | None = None
    position: int | None = None
    before: str = ""
    at: str = ""
    after: str = ""


def counter(text: str) -> Counter:
    """Characters, encoding and segments of ``text`` as SMS, or where its placeholder
    syntax is wrong (the text around the fault, to be marked)."""
    try:
        parsed = parse_template(text)
    except TemplateSyntaxError as exc:
        position = min(exc.position, max(len(text) - 1, 0))
        return Counter(
            error=exc.reason,
            position=exc.position,
            before=text[max(0, position - 30) : position],
            at=text[position : position + 1] or " ",
            after=text[position + 1 : position + 30],
        )
    info = sms_info(text)
    return Counter(
        encoding=info.encoding.value,
        characters=info.characters,
        segments=info.segments,
        placeholders=parsed.placeholders,
    )


@router.post("/templates/preview")
async def preview(
    request: Request,
    field_name: str = Query(..., alias="field", max_length=40),
    who: Viewer = viewer_of(*ADMINS),
) -> Response:
    """The counter of one text box, for htmx to swap under it as the text is typed."""
    form = await request.form()
    value = form.get(field_name)
    text = value if isinstance(value, str) else ""
    return render(request, "_text_counter.html", {"c": counter(text), "field_name": field_name})


@router.post("/templates/new")
async def create_template(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    c = request.app.state.container
    form = TemplateForm.read(await request.form())
    payload = form.payload(state_of(request).t)
    if not form.errors:
        try:
            data = TemplateCreate.model_validate({**payload, "channel_type": form.channel_type})
            created: TemplateOut = c.templates.create(
                who.org_id, data, key_id=CONSOLE_KEY_ID, user_id=who.user.id
            )
        except ValidationError as exc:
            _validation_errors(exc, form)
        except (InvalidRequestError, ConflictError) as exc:
            form.errors[form.field_of(exc.field)] = exc.message
        else:
            return RedirectResponse(f"/templates/{created.id}?saved=1", status_code=303)
    return _page(request, form, template=None, status=422)


@router.get("/templates/{template_id}")
def edit_template(
    request: Request,
    template_id: str,
    saved: bool = Query(False),
    who: Viewer = viewer_of(*ADMINS),
) -> Response:
    c = request.app.state.container
    template: TemplateOut = c.templates.get(who.org_id, template_id)
    t = state_of(request).t
    return _page(
        request,
        TemplateForm.of(template),
        template=template,
        used_by=_usage(request, who, template_id),
        notice=t.gettext("Template saved.") if saved else None,
    )


@router.post("/templates/{template_id}")
async def update_template(
    request: Request, template_id: str, who: Viewer = viewer_of(*ADMINS)
) -> Response:
    c = request.app.state.container
    template: TemplateOut = c.templates.get(who.org_id, template_id)
    form = TemplateForm.read(await request.form())
    form.channel_type = template.channel_type.value
    payload = form.payload(state_of(request).t)
    if not form.errors:
        try:
            c.templates.update(
                who.org_id,
                template_id,
                TemplateUpdate.model_validate(payload),
                key_id=CONSOLE_KEY_ID,
                user_id=who.user.id,
            )
        except ValidationError as exc:
            _validation_errors(exc, form)
        except (InvalidRequestError, ConflictError) as exc:
            form.errors[form.field_of(exc.field)] = exc.message
        else:
            return RedirectResponse(f"/templates/{template_id}?saved=1", status_code=303)
    return _page(
        request,
        form,
        template=template,
        used_by=_usage(request, who, template_id),
        status=422,
    )


@router.post("/templates/{template_id}/delete")
def delete_template(
    request: Request, template_id: str, who: Viewer = viewer_of(*ADMINS)
) -> Response:
    c = request.app.state.container
    try:
        c.templates.delete(who.org_id, template_id, by=who.principal)
    except ConflictError:
        template: TemplateOut = c.templates.get(who.org_id, template_id)
        used_by = _usage(request, who, template_id)
        form = TemplateForm.of(template)
        form.errors[""] = state_of(request).t.gettext(
            "This template cannot be deleted: the configurations below use it. "
            "Give them another template first."
        )
        return _page(request, form, template=template, used_by=used_by, status=409)
    return RedirectResponse("/templates", status_code=303)
