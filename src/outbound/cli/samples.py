"""The sample flows under ``examples/flows/``: each a template, a configuration and a flow.

A sample is applied through the HTTP API, as an administrator would: the template is
created, then the configuration (naming the template and a channel), then the flow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SAMPLE_NAMES", "Sample", "apply_sample", "examples_dir", "load_sample"]

SAMPLE_NAMES = ("case-created", "case-resolved")

# call(method, path, json=..., content=..., headers=...) -> the decoded JSON response.
Call = Callable[..., Any]


@dataclass(frozen=True)
class Sample:
    name: str
    template: dict[str, Any]
    configuration: dict[str, Any]
    flow: str


def examples_dir() -> Path:
    """``examples/flows`` of this checkout (or of the current directory)."""
    candidates = [
        Path.cwd() / "examples" / "flows",
        Path(__file__).resolve().parents[3] / "examples" / "flows",
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("examples/flows not found; run from the project's directory")


def load_sample(name: str, directory: Path | None = None) -> Sample:
    folder = (directory or examples_dir()) / name
    return Sample(
        name=name,
        template=json.loads((folder / "template.json").read_text(encoding="utf-8")),
        configuration=json.loads((folder / "configuration.json").read_text(encoding="utf-8")),
        flow=(folder / "flow.yaml").read_text(encoding="utf-8"),
    )


def apply_sample(call: Call, sample: Sample, channel_id: str) -> dict[str, Any]:
    """Create the sample's template and configuration, and apply its flow; returns the flow."""
    template = call("POST", "/v1/templates", json=sample.template)
    configuration = {k: v for k, v in sample.configuration.items() if k != "template"}
    configuration.update(channel_id=channel_id, template_id=template["id"])
    call("POST", "/v1/outbound-configurations", json=configuration)
    flow: dict[str, Any] = call(
        "POST",
        "/v1/flows",
        content=sample.flow.encode(),
        headers={"Content-Type": "application/yaml"},
    )
    return flow
