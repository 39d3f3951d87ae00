"""GUIDs as Dynamics 365 writes them read as ours."""

from __future__ import annotations

import pytest

from outbound.domain.identifiers import canonical_guid

GUID = "6a75e67c-2f4d-4c2b-9f0e-0d1c2b3a4f5e"


@pytest.mark.parametrize(
    "written",
    [GUID, GUID.upper(), f"{{{GUID.upper()}}}", f" {{{GUID}}} ", f"{{ {GUID} }}"],
)
def test_any_case_with_or_without_braces(written: str) -> None:
    assert canonical_guid(written) == GUID


@pytest.mark.parametrize(
    ("written", "read"), [("{", "{"), ("}", "}"), ("{}", ""), ("", ""), ("{ABC", "{abc")]
)
def test_what_is_not_a_guid_is_only_trimmed(written: str, read: str) -> None:
    assert canonical_guid(written) == read
