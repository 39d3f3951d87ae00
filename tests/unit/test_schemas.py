"""The API models: one base for every input, one for every output, one public package."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import BaseModel

import outbound.schemas
from outbound.app import build_container, create_app
from outbound.config import Settings
from outbound.schemas import InputModel, OutputModel

MODULES = [
    "agents",
    "base",
    "catalog",
    "consent",
    "conversations",
    "flows",
    "messages",
    "queues",
    "records",
    "sending",
    "users",
]


def _models() -> list[type[BaseModel]]:
    found = []
    for name in MODULES:
        module = importlib.import_module(f"outbound.schemas.{name}")
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
            ):
                found.append(value)
    return found


@pytest.mark.parametrize("name", MODULES)
def test_the_package_exports_every_public_name(name: str) -> None:
    module = importlib.import_module(f"outbound.schemas.{name}")
    assert set(module.__all__) <= set(outbound.schemas.__all__)
    for public in module.__all__:
        assert getattr(outbound.schemas, public) is getattr(module, public)


def test_every_model_has_one_of_the_two_bases() -> None:
    models = _models()
    assert len(models) > 40
    for model in models:
        if model in {InputModel, OutputModel}:
            continue
        assert issubclass(model, InputModel) != issubclass(model, OutputModel), model


def _request_bodies(document: dict[str, Any]) -> list[str]:
    """The names of the models that request bodies are, from the OpenAPI document."""
    names = []
    for operations in document["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if schema is None:
                continue
            # A model, an optional model (anyOf the model and null), or a model written out
            # in full (a flow run's); a flow document is any object, with no model.
            refs = [schema.get("$ref"), *(s.get("$ref") for s in schema.get("anyOf", []))]
            names.extend(ref.rpartition("/")[2] for ref in refs if ref)
            if not any(refs) and "properties" in schema:
                names.append(schema["title"])
    return names


def test_every_request_body_is_an_input_model(tmp_path: Path) -> None:
    """So that every input gets the same checks (NUL, half surrogate pairs, unknown fields)."""
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode())
    container = build_container(settings)
    try:
        names = _request_bodies(create_app(container, run_worker=False).openapi())
    finally:
        container.db.dispose()
    assert {"SendIn", "ChannelCreate", "ContactUpdate", "FlowRunIn", "EventIn"} <= set(names)
    for name in names:
        assert issubclass(getattr(outbound.schemas, name), InputModel), name


def test_a_validators_refusals_are_said_in_french() -> None:
    from pydantic import ValidationError

    from outbound.console.i18n import Translator, validation_text
    from outbound.schemas.base import ContextValue
    from outbound.schemas.queues import OverflowSpec

    class Values(BaseModel):
        value: ContextValue

    said: list[str] = []
    for model, data in ((OverflowSpec, {"action": "transfer"}), (Values, {"value": [1]})):
        with pytest.raises(ValidationError) as caught:
            model.model_validate(data)
        said += [Translator("fr").error(validation_text(e)) for e in caught.value.errors()]
    assert said == [
        "queue_id est obligatoire quand action vaut transfer",
        "La valeur doit être un texte, un nombre, un booléen ou null",
    ]


def test_a_sentence_for_people_stays_a_text_through_an_answer() -> None:
    from outbound.schemas import ImportRowError
    from outbound.texts import N_, Text

    said = N_("must be at most %(max_length)s characters", max_length=3)
    row = ImportRowError(row=2, field="name", message=said)
    assert isinstance(row.message, Text) and row.message.msgid == said.msgid
    assert row.model_dump(mode="json")["message"] == "must be at most 3 characters"
    assert ImportRowError(row=2, field=None, message="plain").message == "plain"
