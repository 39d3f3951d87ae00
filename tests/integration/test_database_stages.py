"""The database work of each stage of a message is counted: statements, transactions, CPU."""

from __future__ import annotations

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from outbound.adapters.db.stages import run_in_stage, stage
from outbound.app import Container
from tests.helpers import Setup, Tenant, contact, scrape_metrics


async def test_each_stage_counts_its_statements_and_transactions(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    before = container.db.stages.snapshot()
    response = tenant.post(
        "/v1/outbound/send",
        {
            "configuration_id": setup.config_id,
            "contacts": [contact(), contact("+33612345679"), contact("+33612345680")],
        },
    )
    assert response.status_code == 202, response.text
    await run_in_stage("dispatch", container.dispatcher().run_once())
    await container.providers["sandbox"].drain()  # type: ignore[attr-defined]
    after = container.db.stages.snapshot()

    def grew(name: str) -> tuple[int, int, float]:
        old = before.get(name, (0, 0, 0.0))
        new = after[name]
        return new[0] - old[0], new[1] - old[1], new[2] - old[2]

    for name in ("accept", "claim", "record", "report"):
        statements, transactions, cpu = grew(name)
        assert statements >= 1 and transactions >= 1 and cpu > 0, (name, statements, cpu)
    # The dispatcher's other work (send context, slots, consent) is its own stage.
    assert grew("dispatch")[0] >= 1
    # Work outside any stage is "other", and nothing counts twice.
    with stage("inbound"):
        with container.db.read() as session:
            session.execute(sa.text("SELECT 1"))
    assert container.db.stages.snapshot()["inbound"][:2] == (
        after["inbound"][0] + 1,
        after["inbound"][1] + 1,
    )

    samples = {
        (s.name, s.labels.get("stage")): s.value
        for family in text_string_to_metric_families(scrape_metrics(tenant.client).text)
        for s in family.samples
    }
    assert samples[("outbound_database_statements_total", "accept")] >= 1
    assert samples[("outbound_database_transactions_total", "claim")] >= 1
    assert samples[("outbound_database_session_cpu_seconds_total", "record")] > 0


def test_an_executemany_counts_a_statement_per_parameter_set(container: Container) -> None:
    before = container.db.stages.snapshot()["inbound"][0]
    with stage("inbound"), container.db.transaction() as session:
        session.connection().execute(
            sa.text("UPDATE messages SET status = status WHERE id = :id"),
            [{"id": "a"}, {"id": "b"}, {"id": "c"}],
        )
    assert container.db.stages.snapshot()["inbound"][0] - before == 3
