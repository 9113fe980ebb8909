"""The returns core's tests again, on PostgreSQL (a batch of answers in one transaction, the
latest answer winning, the table's one query); only the ``engine`` they build on differs."""

from __future__ import annotations

import pytest
from _pytest.fixtures import FixtureFunctionDefinition as FixtureDefinition
from sqlalchemy import Engine

from tests import test_returns

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(pg_engine: Engine) -> Engine:
    """Every fixture built on ``engine`` (``province_db`` …) is built on PostgreSQL here."""
    return pg_engine


globals().update(
    {
        name: obj
        for name, obj in vars(test_returns).items()
        if name.startswith("test_") or (name != "engine" and isinstance(obj, FixtureDefinition))
    }
)
