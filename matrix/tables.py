"""The Core table behind a model, for tuple queries: no ORM object per row where a national
roster means hundreds of thousands of rows. One way to get it, typed, instead of
``Model.__table__`` with a type-ignore at every use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from matrix import models


def table_of(model: Any) -> Table:
    """``Unit`` → the ``unit`` Table.

    >>> from matrix.models import Unit
    >>> table_of(Unit).name
    'unit'
    """
    table = model.__table__
    assert isinstance(table, Table)
    return table


# every table once, by its domain name
ACKNOWLEDGEMENT = table_of(models.Acknowledgement)
AUDIT_ENTRY = table_of(models.AuditEntry)
AUDIT_HEAD = table_of(models.AuditHead)
BIND_ATTEMPT = table_of(models.BindAttempt)
COMMAND_CLAIM = table_of(models.CommandClaim)
CONTACT_BINDING = table_of(models.ContactBinding)
DELIVERY = table_of(models.Delivery)
FORM = table_of(models.Form)
FORM_ANSWER = table_of(models.FormAnswer)
GROUP = table_of(models.Group)
JOIN_REQUEST = table_of(models.JoinRequest)
MATCH_SUGGESTION = table_of(models.MatchSuggestion)
MEDIA_ACCOUNT = table_of(models.MediaAccount)
MEMBERSHIP = table_of(models.Membership)
NOTICE = table_of(models.Notice)
OWNER_REQUEST = table_of(models.OwnerRequest)
PERSON = table_of(models.Person)
POSITION = table_of(models.Position)
PROVISION_RUN = table_of(models.ProvisionRun)
PROVISION_STEP = table_of(models.ProvisionStep)
RELAY_ACCOUNT = table_of(models.RelayAccount)
RELAY_JOB = table_of(models.RelayJob)
REPORT = table_of(models.Report)
ROOM_GREETING = table_of(models.RoomGreeting)
SEEN_ROOM = table_of(models.SeenRoom)
UNIT = table_of(models.Unit)
WATCH_FLAG = table_of(models.WatchFlag)
