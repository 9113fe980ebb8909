"""The Core table behind a model, for tuple queries: no ORM object per row where a national
roster means hundreds of thousands of rows. One way to get it, typed, instead of
``Model.__table__`` with a type-ignore at every use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table


def table_of(model: Any) -> Table:
    """``Unit`` → the ``unit`` Table.

    >>> from matrix.models import Unit
    >>> table_of(Unit).name
    'unit'
    """
    table = model.__table__
    assert isinstance(table, Table)
    return table
