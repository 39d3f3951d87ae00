"""Accepting a request writes its messages in one statement, each with the columns it has,
on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from outbound.adapters.db.models import Message
from outbound.app import Container
from tests.helpers import Setup, Tenant, contact


def _accept(tenant: Tenant, setup: Setup, contacts: list[dict[str, object]]) -> list[str]:
    response = tenant.post(
        "/v1/outbound/send", {"configuration_id": setup.config_id, "contacts": contacts}
    )
    assert response.status_code == 202, response.text
    return [r["message_id"] for r in response.json()["results"]]


def test_the_statements_of_an_accept_do_not_grow_with_its_contacts(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    def accept(count: int) -> int:
        before = container.db.stages.snapshot()["accept"][0]
        _accept(tenant, setup, [contact(f"+3361234{i:04d}") for i in range(count)])
        return container.db.stages.snapshot()["accept"][0] - before

    accept(1)  # the first request also reads what later ones find cached
    assert accept(2) == accept(8)


def test_a_message_after_a_skipped_one_keeps_its_conversation(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    """On send, only the messages queued open a conversation: rows of one request differ in
    their columns, and each keeps its own."""
    response = tenant.patch(
        f"/v1/outbound-configurations/{setup.config_id}", {"conversation_mode": "on_send"}
    )
    assert response.status_code == 200, response.text
    skipped, queued = _accept(
        tenant, setup, [contact("+33612345670", optin=False), contact("+33612345671")]
    )
    with container.db.read() as session:
        rows = {
            m.id: m
            for m in session.execute(
                sa.select(Message).where(Message.id.in_([skipped, queued]))
            ).scalars()
        }
    assert (rows[skipped].status, rows[skipped].conversation_id) == ("skipped", None)
    assert rows[queued].status == "queued"
    assert rows[queued].conversation_id is not None
    assert rows[queued].context == {"CustomerName": "Ana", "CaseName": "CAS-1"}
    assert rows[queued].created_at == rows[queued].updated_at
    assert rows[queued].send_as_template is False
