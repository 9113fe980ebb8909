"""A notice's files across crashes: whatever the point a worker dies at (a batch claimed, a file
about to go, a file just sent, a batch written), after the restart every group has the notice's
text and each of its files exactly once, each file after the text. The one window left is the
commit of a file's own send (``flushing`` inside it): there the file's fate is unknown and it goes
again, as a text copy goes again as 补发. On SQLite and on PostgreSQL."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from matrix.blueprint import Blueprint
from matrix.relay import RelayOptions, issue_notice
from matrix.relay.attachments import NoticeFile
from matrix.relay.options import AttachmentOptions
from matrix.relay.withdraw import withdraw_notice
from matrix.roster import import_roster, read_roster
from matrix.tables import DELIVERY
from tests import worlds
from tests.worlds import RelayWorld

NAMES = ("方案.pdf", "名单.xlsx")


class Crash(BaseException):
    """The process dies here."""


class CrashAt:
    """Kill the worker at the ``n``-th fault point named ``point`` (once)."""

    def __init__(self, point: str, n: int) -> None:
        self.point, self.left, self.fired = point, n, False

    def __call__(self, point: str) -> None:
        if point != self.point or self.fired:
            return
        self.left -= 1
        if not self.left:
            self.fired = True
            raise Crash(point)


def _relay(engine: Engine, bp: Blueprint, tmp_path: Path, batch: int) -> RelayWorld:
    units, persons = worlds.write_roster(tmp_path, *worlds.province(counties=6, cores=1))
    import_roster(engine, read_roster(units, persons, bp), bp)
    store = AttachmentOptions(dir=str(tmp_path / "store"))
    options = RelayOptions(rate=0.0, claim_batch=batch, attachments=store)
    return RelayWorld(engine, bp, options=options)


def _issue(relay: RelayWorld, tmp_path: Path) -> None:
    files = []
    for name in NAMES:
        path = tmp_path / "phone" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(name.encode() * 100)
        files.append(NoticeFile(name, path.stat().st_size, str(path)))
    office = relay.contact("P", "office_staff")
    issue_notice(relay.env, relay.room("P"), office, "截止 17:00 请查收材料", files)


def _check(relay: RelayWorld, *, twice_allowed: int = 0) -> None:
    """Every relay room: the text (a 补发 may repeat it), then each file exactly once."""
    doubled = 0
    for room in relay.rooms.values():
        said = [m for m in relay.world.messages(room) if m.contact_id in ("bot1", "bot2")]
        texts = [
            i
            for i, m in enumerate(said)
            if m.text.removeprefix("【补发】").startswith("【通知 T1】")
        ]
        files = Counter(Path(m.file).name for m in said if m.file)
        assert texts, room
        assert set(files) == set(NAMES), (room, files)
        doubled += sum(n - 1 for n in files.values())
        first_file = min(i for i, m in enumerate(said) if m.file)
        assert texts[0] < first_file, "a file went before its notice"
    assert doubled == twice_allowed
    with relay.engine.connect() as conn:
        states = dict(
            conn.execute(
                select(DELIVERY.c.state, func.count())
                .where(DELIVERY.c.kind == "file")
                .group_by(DELIVERY.c.state)
            ).all()
        )
    assert states == {"sent": len(NAMES) * len(relay.rooms)}


def crash_and_restart(relay: RelayWorld, crash: Any) -> None:
    """Run the relay until ``crash`` kills the worker, then a fresh process finishes it."""
    relay.restart(faults=crash)
    with pytest.raises(Crash):
        relay.deliver()
    relay.restart()
    relay.deliver()


def test_without_a_crash_each_group_gets_each_file_once(engine, bp, tmp_path):
    relay = _relay(engine, bp, tmp_path, 4)
    _issue(relay, tmp_path)
    relay.deliver()
    _check(relay)


@pytest.mark.parametrize("batch", [1, 4, 16])
@pytest.mark.parametrize("point", ["claimed", "before_send", "after_send", "flushed"])
def test_a_crash_loses_no_file_and_sends_none_twice(
    engine: Engine, bp: Blueprint, tmp_path: Path, batch: int, point: str
):
    relay = _relay(engine, bp, tmp_path, batch)
    _issue(relay, tmp_path)
    # deep enough into the relay that files are on their way (each send passes every point)
    crash = CrashAt(point, 7)
    crash_and_restart(relay, crash)
    _check(relay)


class CrashAfter:
    """Kill the worker at ``point`` when it comes right after ``previous``: a file's send
    commits at once (``before_send`` then ``flushing``), a text's passes ``after_send`` first;
    ``flushing`` then ``after_send`` is just after a file went and was written."""

    def __init__(self, point: str, previous: str) -> None:
        self.point, self.previous, self.last, self.fired = point, previous, "", False

    def __call__(self, point: str) -> None:
        last, self.last = self.last, point
        if (last, point) == (self.previous, self.point) and not self.fired:
            self.fired = True
            raise Crash(point)


def test_a_crash_in_the_commit_of_a_file_send_sends_that_file_again(engine, bp, tmp_path):
    relay = _relay(engine, bp, tmp_path, 4)
    _issue(relay, tmp_path)
    crash = CrashAfter("flushing", "before_send")
    crash_and_restart(relay, crash)
    _check(relay, twice_allowed=1)


def test_on_postgres_too(pg_engine: Engine, bp: Blueprint, tmp_path: Path):
    relay = _relay(pg_engine, bp, tmp_path, 4)
    _issue(relay, tmp_path)
    crash = CrashAt("after_send", 7)
    crash_and_restart(relay, crash)
    _check(relay)


def test_a_crash_just_after_a_file_went_does_not_send_it_again(engine, bp, tmp_path):
    relay = _relay(engine, bp, tmp_path, 16)
    _issue(relay, tmp_path)
    crash = CrashAfter("after_send", "flushing")
    crash_and_restart(relay, crash)
    assert crash.fired
    _check(relay)


class WithdrawAt:
    """At the ``n``-th ``point``, the province office withdraws T1 (from another process, as it
    were); the log is bookmarked there."""

    def __init__(self, relay: RelayWorld, point: str, n: int) -> None:
        self.relay, self.point, self.left = relay, point, n
        self.mark: int | None = None

    def __call__(self, point: str) -> None:
        if point != self.point or self.mark is not None:
            return
        self.left -= 1
        if not self.left:
            withdraw_notice(self.relay.env, self.relay.contact("P", "office_staff"), 1, "有误")
            self.mark = len(self.relay.world.messages())


@pytest.mark.parametrize("point", ["claimed", "before_send", "after_send"])
def test_a_withdrawal_mid_relay_stops_every_later_file(engine, bp, tmp_path, point):
    relay = _relay(engine, bp, tmp_path, 4)
    _issue(relay, tmp_path)
    withdraw = WithdrawAt(relay, point, 5)
    relay.restart(faults=withdraw)
    relay.deliver()
    assert withdraw.mark is not None
    before = relay.world.messages()[: withdraw.mark]
    after = relay.world.messages()[withdraw.mark :]
    assert [m for m in before if m.file], "the withdrawal should come while files go out"
    assert not [m for m in after if m.file and m.contact_id in ("bot1", "bot2")]
    # every file that went out is taken back with the copy it followed
    sent = [m for m in relay.world.messages() if m.file and m.contact_id in ("bot1", "bot2")]
    assert all(m.recalled for m in sent)
