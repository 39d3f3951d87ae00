"""Shared fixtures: settings, a database per backend, the app, and organisations with keys.

The helpers these fixtures build on (``Tenant``, ``Setup``, ``contact``...) are in
``tests/helpers``.

Tests that use ``container`` run on SQLite and, when ``OUTBOUND_TEST_POSTGRES_URL`` names a
PostgreSQL server, on PostgreSQL too (a database of their own, created for the session).
``OUTBOUND_REQUIRE_POSTGRES=1`` (set by CI) turns a missing server into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from outbound.adapters.db.migrate import upgrade
from outbound.adapters.db.models import Base
from outbound.app import Container, build_container, create_app
from outbound.config import Settings
from outbound.testing import FakeClock, ScriptedProvider
from tests.helpers import SECRET, Setup, Tenant, make_setup, make_tenant

POSTGRES_URL = os.environ.get("OUTBOUND_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("OUTBOUND_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def user_data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands for the user's data directory: no test writes into the real one."""
    return tmp_path_factory.mktemp("user-data")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, user_data_home: Path) -> None:
    for name in list(os.environ):
        if name.startswith("OUTBOUND_"):
            monkeypatch.delenv(name)
    # Where platformdirs puts the default data directory on Linux, here and in subprocesses.
    monkeypatch.setenv("XDG_DATA_HOME", str(user_data_home))


def _pg_admin_url(url: str) -> sa.URL:
    parsed = sa.make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session."""
    if not POSTGRES_URL:
        message = "PostgreSQL tests need OUTBOUND_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    admin_url = _pg_admin_url(POSTGRES_URL)
    name = f"outbound_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL unreachable at {POSTGRES_URL}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL}")
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    engine = sa.create_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(url: str) -> None:
    engine = sa.create_engine(url)
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("postgres_database")
    _truncate(url)
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key=SECRET,
        default_region="FR",
        sandbox_delivery_delay=0.0,
        retry_base_seconds=1.0,
        retry_max_seconds=60.0,
        max_attempts=3,
        lease_seconds=30.0,
    )


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider("sandbox")


@pytest.fixture
def container(settings: Settings, clock: FakeClock) -> Iterator[Container]:
    """The service on the selected backend, with the sandbox provider (real one)."""
    c = build_container(settings, clock=clock)
    c.migrate()
    yield c
    c.db.dispose()


@pytest.fixture
def scripted_container(
    settings: Settings, clock: FakeClock, provider: ScriptedProvider
) -> Iterator[Container]:
    """The service with a scripted provider standing in for the sandbox."""
    c = build_container(settings, clock=clock, providers={"sandbox": provider})
    c.migrate()
    yield c
    c.db.dispose()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container, run_worker=False)) as test_client:
        yield test_client


@pytest.fixture
def tenant(container: Container, client: TestClient) -> Tenant:
    return make_tenant(container, client)


@pytest.fixture
def other_tenant(container: Container, client: TestClient) -> Tenant:
    return make_tenant(container, client, "Other")


@pytest.fixture
def setup(tenant: Tenant) -> Setup:
    return make_setup(tenant)
