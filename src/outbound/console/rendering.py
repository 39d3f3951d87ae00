"""Rendering console pages: one Jinja2 environment, one :func:`render`.

Templates live in ``templates/``; every page extends ``base.html`` (the layout: skip link,
menu, language, sign-out, main region) and fills its ``title`` and ``content`` blocks.
Fragments that htmx swaps into a page are templates of their own whose names start with
``_`` (``_template_preview.html``), rendered by the same function.

The request's :class:`~outbound.console.i18n.Translator` is installed as the gettext of the
templates while one renders, so ``{{ _("Save") }}`` and ``{% trans %}`` speak the user's
language, and ``value|datetime`` shows a time in their zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, Template, select_autoescape

from outbound import __version__
from outbound.console.access import state_of
from outbound.console.i18n import LANGUAGES, Translator
from outbound.console.nav import menu_for
from outbound.console.session import CSRF_FIELD, CSRF_HEADER
from outbound.texts import Text

__all__ = ["environment", "render", "render_text", "render_with"]

_translator: ContextVar[Translator] = ContextVar("console_translator")


def _gettext(message: str) -> str:
    return _translator.get().gettext(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return _translator.get().ngettext(singular, plural, n)


def _finalize(value: Any) -> Any:
    """Every value a template prints: a service's :class:`~outbound.texts.Text` (an error
    message) is said in the reader's language; anything else is printed as it is."""
    if isinstance(value, Text):
        return _translator.get().error(value)
    return value


def _datetime(value: datetime | None, format: str = "medium") -> str:
    return _translator.get().datetime(value, format)


def _number(value: float | int) -> str:
    return _translator.get().number(value)


def _percent(value: float) -> str:
    return _translator.get().percent(value)


def _build() -> Environment:
    env = Environment(
        loader=PackageLoader("outbound.console", "templates"),
        autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the extension
        _gettext, _ngettext, newstyle=True
    )
    env.filters["datetime"] = _datetime
    env.filters["number"] = _number
    env.filters["percent"] = _percent
    env.globals["version"] = __version__
    env.globals["csrf_field"] = CSRF_FIELD
    env.globals["csrf_header"] = CSRF_HEADER
    return env


environment = _build()


def render_text(request: Request, name: str, context: Mapping[str, Any] | None = None) -> str:
    """The HTML of template ``name`` for this request."""
    state = state_of(request)
    viewer = state.viewer
    values: dict[str, Any] = {
        "request": request,
        "t": state.t,
        "language": state.t.language,
        "languages": LANGUAGES,
        "viewer": viewer,
        "menu": menu_for(viewer.role) if viewer else [],
        "csrf_token": state.csrf_token,
        "path": request.url.path,
        **(context or {}),
    }
    return render_with(state.t, environment.get_template(name), **values)


def render_with(t: Translator, template: Template, /, **values: Any) -> str:
    """``template`` rendered in the language and zone of ``t``."""
    token = _translator.set(t)
    try:
        return template.render(values)
    finally:
        _translator.reset(token)


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Template ``name`` as this request's answer."""
    return HTMLResponse(
        render_text(request, name, context), status_code=status, headers=dict(headers or {})
    )
