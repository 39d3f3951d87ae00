"""What every request and response model shares.

Every request body is an :class:`InputModel`: unknown fields are refused, texts lose their
surrounding whitespace (unless a model keeps them as written), and no text anywhere in it,
nested keys and values included, may hold the NUL character, which PostgreSQL can neither
store nor compare. Every response is an :class:`OutputModel`, which also reads a row's
attributes.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeAlias, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    StrictInt,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)
from pydantic_core import PydanticCustomError

__all__ = ["ContextValue", "InputModel", "LocaleValue", "OutputModel", "Page"]


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class InputModel(BaseModel):
    """Base of every request body: the same checks for every input of the API."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("must not contain the NUL character (U+0000)")
        return value


class OutputModel(BaseModel):
    """Base of every response body; built from keyword arguments or from a row."""

    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(OutputModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``cursor`` to get the next one."""

    data: list[T]
    next_cursor: str | None = None


def _one_error(message: str) -> WrapValidator:
    """Report a failed union as one error at the field itself.

    Pydantic reports one error per member of a union, each located under the member's name
    (``values.Name.constrained-str``, ``values.Name.int``, ...), which names no field a caller
    can recognise.
    """

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            raise PydanticCustomError("invalid_type", message) from exc

    return WrapValidator(validate)


ContextValue: TypeAlias = Annotated[
    str | int | float | bool | None,
    _one_error("Input should be a string, a number, a boolean or null"),
]
"""A value a template placeholder or a custom field may take."""

LocaleValue: TypeAlias = Annotated[
    str | StrictInt | None,
    _one_error("Input should be a BCP-47 language tag (fr-FR) or a Windows LCID (1036)"),
]
"""A language as a BCP-47 tag or a Windows LCID."""
