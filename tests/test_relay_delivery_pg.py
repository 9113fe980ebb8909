"""The delivery engine's tests again, on PostgreSQL: there a worker claims its next copies in
one statement (``DeliveryWorker._take``: pick ``FOR UPDATE SKIP LOCKED``, mark and return them
at once), so pacing, retries, hand-overs, steals, outages and crash recovery are run on both
databases. The tests are the SQLite ones, unchanged; only the ``engine`` they build on differs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from _pytest.fixtures import FixtureFunctionDefinition as FixtureDefinition
from sqlalchemy import Engine

from tests import test_relay_crash, test_relay_delivery, test_relay_handover, test_relay_outage

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(pg_engine: Engine) -> Engine:
    """Every fixture built on ``engine`` (``province_db`` …) is built on PostgreSQL here."""
    return pg_engine


def _tests_of(module: Any) -> dict[str, Callable[..., Any]]:
    """The module's tests and its own fixtures (``ten_counties`` …), which then build on the
    ``engine`` above."""
    return {
        name: obj
        for name, obj in vars(module).items()
        if name.startswith("test_") or (name != "engine" and isinstance(obj, FixtureDefinition))
    }


for _module in (test_relay_delivery, test_relay_handover, test_relay_outage, test_relay_crash):
    globals().update(_tests_of(_module))
