"""Helpers the tests share: acting as an organisation through the API, a ready catalog, the
check of the error shape, reading the metrics, and the settings of the session. Fixtures stay in
``tests/conftest.py``; these are plain functions and classes, imported as
``from tests.helpers import Tenant, contact``.
"""

from __future__ import annotations

from tests.helpers.errors import assert_error
from tests.helpers.metrics import scrape_metrics
from tests.helpers.settings import SECRET
from tests.helpers.tenants import (
    Setup,
    Tenant,
    contact,
    make_setup,
    make_tenant,
    queue_messages,
)

__all__ = [
    "SECRET",
    "Setup",
    "Tenant",
    "assert_error",
    "contact",
    "make_setup",
    "make_tenant",
    "queue_messages",
    "scrape_metrics",
]
