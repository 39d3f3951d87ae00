"""What every request and response model shares.

Every request body is an :class:`InputModel`: unknown fields are refused, texts lose their
surrounding whitespace (unless a model keeps them as written), and no text anywhere in it,
nested keys and values included, may hold the NUL character, which PostgreSQL can neither
store nor compare, nor half of a surrogate pair (JSON can escape one alone, ``"\\ud800"``),
which no database or JSON encoder takes. Text fields refuse the latter by themselves; the
check covers free-form values too (channel options, event records, flow run parameters).
Every response is an :class:`OutputModel`, which also reads a row's attributes.
"""

from __future__ import annotations

import re
from datetime import datetime
from types import UnionType
from typing import (
    Annotated,
    Any,
    ClassVar,
    Final,
    Generic,
    TypeAlias,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    NaiveDatetime,
    StrictInt,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)
from pydantic_core import PydanticCustomError

from outbound.domain.texts import unstorable
from outbound.texts import N_, Text

__all__ = [
    "ContextValue",
    "InputModel",
    "IsoDateTime",
    "LocaleValue",
    "OutputModel",
    "Page",
    "Said",
    "context_value_checks",
]


def _omit_null(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Describe the fields of ``never_null`` as they are taken: omitted, or a value."""
    never_null: frozenset[str] = getattr(model, "never_null", frozenset())
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf")
        if name not in never_null or not isinstance(options, list):
            continue
        kept = [option for option in options if option.get("type") != "null"]
        prop.pop("anyOf")
        prop.pop("default", None)
        if len(kept) == 1:
            prop.update(kept[0])
        else:
            prop["anyOf"] = kept


def _keep_text(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    return value if isinstance(value, Text) else handler(value)


Said: TypeAlias = Annotated[str, WrapValidator(_keep_text)]
"""A sentence for people in an answer: a service's text (:mod:`outbound.texts`) stays one
through the model, so that the console says it in the reader's language; the JSON answer has
the English sentence."""


_NUMBER: Final = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _iso_only(value: Any) -> Any:
    """Refuse a number where a date and time is expected (pydantic reads it as Unix time)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise PydanticCustomError("datetime_type", N_("must be an ISO 8601 date and time"))
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        raise PydanticCustomError("datetime_type", N_("must be an ISO 8601 date and time"))
    return value


IsoDateTime: TypeAlias = Annotated[datetime, BeforeValidator(_iso_only)]
"""A date and time written as ISO 8601 (``2026-12-05T09:30:00+01:00``), never a number."""


def _is_flag(annotation: Any) -> bool:
    """``bool`` or ``bool | None``."""
    return annotation is bool or (
        get_origin(annotation) in (Union, UnionType)
        and bool in get_args(annotation)
        and all(arg in (bool, type(None)) for arg in get_args(annotation))
    )


_TIMES: Final = (datetime, AwareDatetime, NaiveDatetime)


def _is_time(annotation: Any) -> bool:
    """A date and time, or one or ``None``."""
    return annotation in _TIMES or (
        get_origin(annotation) in (Union, UnionType)
        and any(arg in _TIMES for arg in get_args(annotation))
    )


class InputModel(BaseModel):
    """Base of every request body: the same checks for every input of the API.

    ``never_null`` names optional fields that may be left out but not set to ``null`` (the
    fields of a change that have no empty value); the description says so too.
    """

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=_omit_null
    )
    never_null: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name in cls.never_null:
            raise PydanticCustomError("never_null", N_("must not be null"))
        if (
            isinstance(value, int | str)
            and not isinstance(value, bool)
            and info.field_name is not None
            and _is_flag(cls.model_fields[info.field_name].annotation)
        ):
            # JSON has true and false; 0, 1 and "yes" are what the schema says they are not.
            raise PydanticCustomError("bool_type", N_("Input should be true or false"))
        if info.field_name is not None and _is_time(cls.model_fields[info.field_name].annotation):
            return _iso_only(value)
        return value

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        problem = unstorable(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class OutputModel(BaseModel):
    """Base of every response body; built from keyword arguments or from a row."""

    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(OutputModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``cursor`` to get the next one."""

    data: list[T]
    next_cursor: str | None = None


def _one_error(message: str, max_length: int | None = None) -> WrapValidator:
    """Report a failed union as one error at the field itself.

    Pydantic reports one error per member of a union, each located under the member's name
    (``values.Name.constrained-str``, ``values.Name.int``, ...), which names no field a caller
    can recognise.
    """

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if max_length is not None and isinstance(value, str) and len(value) > max_length:
            raise PydanticCustomError(
                "string_too_long",
                N_("must be at most {max_length} characters (got {length})"),
                {"max_length": max_length, "length": len(value)},
            )
        try:
            return handler(value)
        except ValidationError as exc:
            raise PydanticCustomError("invalid_type", message) from exc

    return WrapValidator(validate)


def _finite(value: Any) -> Any:
    problem = unstorable(value)
    if problem is not None:
        raise ValueError(problem)
    return value


_CONTEXT_TYPES = N_("Input should be a string, a number, a boolean or null")

ContextValue: TypeAlias = Annotated[
    str | int | float | bool | None, _one_error(_CONTEXT_TYPES), AfterValidator(_finite)
]
"""A value a template placeholder or a custom field may take."""


def context_value_checks(max_length: int) -> tuple[WrapValidator, AfterValidator]:
    """The checks of :data:`ContextValue`, with text at most ``max_length`` characters
    (checked in the same call as the type, so the bound costs nothing more)."""
    return _one_error(_CONTEXT_TYPES, max_length), AfterValidator(_finite)


LocaleValue: TypeAlias = Annotated[
    str | StrictInt | None,
    _one_error(N_("Input should be a BCP-47 language tag (fr-FR) or a Windows LCID (1036)")),
]
"""A language as a BCP-47 tag or a Windows LCID."""
