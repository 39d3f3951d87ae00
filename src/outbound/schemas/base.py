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

import math
import re
from typing import Annotated, Any, Final, Generic, TypeAlias, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictInt,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "ContextValue",
    "InputModel",
    "LocaleValue",
    "OutputModel",
    "Page",
    "context_value_checks",
]


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _problem(value: object) -> str | None:
    """Why a value cannot be stored or rendered, looking into the keys and items of mappings
    and lists."""
    if isinstance(value, str):
        if "\x00" in value:
            return "must not contain the NUL character (U+0000)"
        # isascii() reads a flag: most texts skip the search.
        if value.isascii() or _SURROGATE.search(value) is None:
            return None
        return "must not contain half of a surrogate pair (U+D800 to U+DFFF)"
    if isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN or infinity; Python's parser reads them (and 1e309) anyway.
        return "must be a finite number (not NaN or infinity)"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _problem(key) or _problem(item)
            if problem is not None:
                return problem
    elif isinstance(value, list | tuple):
        for item in value:
            problem = _problem(item)
            if problem is not None:
                return problem
    return None


class InputModel(BaseModel):
    """Base of every request body: the same checks for every input of the API."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        problem = _problem(value)
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
                "must be at most {max_length} characters (got {length})",
                {"max_length": max_length, "length": len(value)},
            )
        try:
            return handler(value)
        except ValidationError as exc:
            raise PydanticCustomError("invalid_type", message) from exc

    return WrapValidator(validate)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number (not NaN or infinity)")
    return value


_CONTEXT_TYPES = "Input should be a string, a number, a boolean or null"

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
    _one_error("Input should be a BCP-47 language tag (fr-FR) or a Windows LCID (1036)"),
]
"""A language as a BCP-47 tag or a Windows LCID."""
