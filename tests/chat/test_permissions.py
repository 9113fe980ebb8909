"""The permission choke point: contact id → roster person → office units → subtree."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from bot.chat.dispatch import _authority
from bot.chat.registry import COMMANDS
from matrix.models import Person, utcnow
from matrix.provisioning.authority import Denied
from matrix.provisioning.binding import bind_by_admin, lookup
from matrix.tree import UnitTree


class _Perms:
    """The policy as the dispatcher asks it, per command."""

    def __init__(self, authority):
        self.authority = authority

    def asker(self, conn, contact_id, display_name=""):
        return self.authority.asker(conn, contact_id, display_name)

    def allows(self, asker, command, unit=None):
        return self.authority.allows(asker, command.who, unit)

    def check(self, asker, command, unit=None):
        self.authority.check(asker, command.who, command.name, unit)


@pytest.fixture
def perms(province_db, bp):
    return _Perms(_authority(bp, UnitTree.load(province_db, bp.level_keys)))


def ask(perms, engine, contact_id):
    with engine.connect() as conn:
        return perms.asker(conn, contact_id, "显示名")


def test_an_office_is_known_by_its_contact_id(perms, province_db):
    asker = ask(perms, province_db, "wxK1n008")
    assert asker.bound and asker.name == "K1office_staff"
    assert asker.office_units == ("K1",) and asker.home_unit == "K1"


def test_a_teacher_is_bound_but_no_office(perms, province_db):
    asker = ask(perms, province_db, "wxK1S1n012")
    assert (
        asker.bound
        and asker.office_units == ()
        and asker.positions == (("K1S1", "brigade_counselor"),)
    )


def test_a_stranger_is_only_their_display_name(perms, province_db):
    asker = ask(perms, province_db, "K1office_staff")  # an id that looks like a name
    assert not asker.bound and asker.name == "显示名"


def test_a_person_removed_from_the_roster_is_a_stranger(perms, province_db):
    with province_db.begin() as conn:
        conn.execute(
            update(Person.__table__)
            .where(Person.wechat_id == "wxK1n008")
            .values(removed_at=utcnow())
        )  # type: ignore[attr-defined]
    assert not ask(perms, province_db, "wxK1n008").bound


@pytest.mark.parametrize(
    "contact, unit, allowed",
    [
        ("wxK1n008", "K1", True),
        ("wxK1n008", "K1S2", True),
        ("wxK1n008", "K2", False),
        ("wxK1n008", "C1", False),
        ("wxC1n004", "K3S1", True),
        ("wxPn001", "K2S2", True),
        ("wxK1n008", "NOPE", False),
    ],
)
def test_an_office_acts_on_its_own_subtree_only(perms, province_db, contact, unit, allowed):
    asker = ask(perms, province_db, contact)
    assert perms.allows(asker, COMMANDS["audit"], unit) is allowed


def test_refusals_say_why(perms, province_db):
    reasons = []
    for contact, unit in (("stranger", "K1"), ("wxK1S1n012", "K1"), ("wxK2n018", "K1")):
        with pytest.raises(Denied) as caught:
            perms.check(ask(perms, province_db, contact), COMMANDS["approve"], unit)
        reasons.append(caught.value.reason)
    assert reasons == ["stranger", "not_office", "outside"]


def test_members_and_anyone(perms, province_db):
    teacher, stranger = ask(perms, province_db, "wxK1S1n012"), ask(perms, province_db, "x")
    assert perms.allows(teacher, COMMANDS["ack"]) and not perms.allows(stranger, COMMANDS["ack"])
    assert perms.allows(stranger, COMMANDS["help"]) and perms.allows(stranger, COMMANDS["bind"])


def test_a_contact_bound_by_an_admin_is_known_and_the_old_id_has_no_authority(perms, province_db):
    """An id change is legitimate through the new binding; the id it replaced is nobody now,
    even though the roster still lists it as the 微信号."""
    assert ask(perms, province_db, "wxK1n008").office_units == ("K1",)
    with province_db.begin() as conn:
        office = lookup(conn, "wxK1n008")
        assert office is not None
        bind_by_admin(conn, "wxid_new_account", office, "wxC1n004")
    assert ask(perms, province_db, "wxid_new_account").office_units == ("K1",)
    old = ask(perms, province_db, "wxK1n008")
    assert not old.bound and old.office_units == ()  # superseded: history, not authority
    with pytest.raises(Denied) as caught:
        perms.check(old, COMMANDS["notice"], "K1")
    assert caught.value.reason == "stranger"
