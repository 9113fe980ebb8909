"""The worlds tests are built in, each by a named function, in one module.

- Rosters: ``province()`` (示范省 P → 甲市 C1 → counties K1… → schools), written by
  ``write_roster`` as CSV or XLSX; ``load`` imports rows into a database.
- Build status: ``build_groups`` inserts a hand-built set of groups with every number known
  (``EXPECTED``); ``build_notices`` adds a relay history on top of it (``NOW``).
- Provisioning: ``plan``, ``apply``, ``accept``, ``sync``, ``built`` on the simulated WeChat with
  a manual clock (``new_world``), so that pacing passes without waiting.
- Relay: ``RelayWorld``, the relay engine running on the simulated WeChat on a virtual clock, over
  rooms made by ``build_matrix``.
- Wechaty: ``provisioned_world`` (every group built by ``ACCOUNT``) and ``mock_world``, the same
  world as the Node mock puppet service reads it.

Rows are plain tuples so a test can break one on purpose before writing the files.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlalchemy import Engine, func, insert, select

from bot.chat.relay_runner import compose
from bot.platforms.simulated import (
    ManualClock,
    SimCalendar,
    SimMessage,
    SimulatedAccount,
    SimulatedWeChat,
)
from bot.rehearsal import sim_build
from bot.render.templates import render
from matrix.blueprint import Blueprint
from matrix.errors import MatrixError
from matrix.platform import IncomingMessage, Platform, Presence
from matrix.provisioning.actual import refresh_rooms
from matrix.provisioning.apply import ApplyReport, apply_plan
from matrix.provisioning.findings import Finding, audit
from matrix.provisioning.membership import Survey, survey
from matrix.provisioning.plan import Plan, build_plan
from matrix.provisioning.schedule import AccountQuota
from matrix.relay import (
    Clock,
    DeliveryWorker,
    RelayEnv,
    RelayOptions,
    SystemClock,
    VirtualClock,
    acknowledge,
    drive,
    forward_report,
    issue_notice,
    next_job_at,
    notice_progress,
    parse_ack,
    run_due_jobs,
    submit_report,
    watch_message,
)
from matrix.relay.codes import parse_code
from matrix.roster import import_roster, read_roster
from matrix.tables import (
    ACKNOWLEDGEMENT,
    DELIVERY,
    GROUP,
    MEMBERSHIP,
    NOTICE,
    PERSON,
    POSITION,
    UNIT,
)

TZ = ZoneInfo("Asia/Shanghai")


# --- rosters -------------------------------------------------------------------------------------

UNIT_HEADER = ("code", "name", "level", "parent_code")
PERSON_HEADER = ("unit_code", "name", "role", "phone", "wechat_id")
UNIT_HEADER_ZH = ("单位代码", "单位名称", "层级", "上级代码")
PERSON_HEADER_ZH = ("单位代码", "姓名", "岗位", "手机", "微信号")

Row = tuple[str, ...]


def province(counties: int = 3, schools: int = 2, cores: int = 2) -> tuple[list[Row], list[Row]]:
    """One province (code P) → one city (C1) → ``counties`` counties (K1…) → ``schools`` each.

    Everyone has a WeChat id ``wx<unit>n<seq>`` and a phone; offices have two staff.
    """
    units: list[Row] = [("P", "示范省", "province", ""), ("C1", "甲市", "city", "P")]
    persons: list[Row] = []
    n = 0

    def person(unit: str, role: str, name: str) -> None:
        nonlocal n
        n += 1
        persons.append((unit, name, role, f"139{n:08d}", f"wx{unit}n{n:03d}"))

    for unit, roles in (
        ("P", ("office_staff", "office_staff", "youth_dept_head")),
        ("C1", ("office_staff", "office_staff", "youth_dept_head", "chief_counselor")),
    ):
        for i, role in enumerate(roles):
            person(unit, role, f"{unit}{role}{i}")
    for k in range(1, counties + 1):
        county = f"K{k}"
        units.append((county, f"乙{k}县", "county", "C1"))
        for role in ("office_staff", "office_staff", "league_staff", "chief_counselor"):
            person(county, role, f"{county}{role}")
        for s in range(1, schools + 1):
            school = f"{county}S{s}"
            units.append((school, f"乙{k}县第{s}小学", "school", county))
            person(school, "brigade_counselor", f"{school}大辅")
            for c in range(cores):
                person(school, "core_squadron_counselor", f"{school}中辅{c}")
    return units, persons


def write_csv(path: Path, header: Row, rows: list[Row], *, encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, header: Row, rows: list[Row]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


def write_roster(
    folder: Path,
    units: list[Row],
    persons: list[Row],
    *,
    fmt: str = "csv",
    encoding: str = "utf-8",
    chinese: bool = False,
) -> tuple[Path, Path]:
    """Write both roster files; returns (units, persons) paths."""
    uh, ph = (UNIT_HEADER_ZH, PERSON_HEADER_ZH) if chinese else (UNIT_HEADER, PERSON_HEADER)
    if fmt == "xlsx":
        return (
            write_xlsx(folder / "units.xlsx", uh, units),
            write_xlsx(folder / "persons.xlsx", ph, persons),
        )
    return (
        write_csv(folder / "units.csv", uh, units, encoding=encoding),
        write_csv(folder / "persons.csv", ph, persons, encoding=encoding),
    )


# --- build status: groups with every number known ------------------------------------------------
# A hand-built build-status world on top of ``worlds.province()``, with every number known.
#
# 示范省 P → 甲市 C1 → 乙1县 K1, 乙2县 K2, 乙3县 K3 (two schools each). Groups and memberships
# are inserted directly, as provisioning would leave them:
#
# | unit | group | built | expected | actual |
# | --- | --- | --- | --- | --- |
# | P  | city-youth-heads (main)             | yes | 3 | 3 (2 of the expected + 1 unknown contact) |
# | P  | province-committee (extension)      | yes | – | 4 |
# | C1 | county-league-leaders (main)        | yes | 8 | 6 |
# | K1 | county-counselors shard 1 (一群)    | yes | 5 | 4 |
# | K1 | county-counselors shard 2 (二群)    | yes | 4 | 4 |
# | K2 | county-counselors                   | no  | 7 | 0 |
# | K3 | (nothing: forecast from the roster) |     | 8 |   |
#
# So: province level 1/1 groups built (+1 extension), 7 members of 3 expected; city 1/1, 6 of 8
# (75%); county 2 of 4 expected groups (50%), 8 of 24 members (33.3%: K3's 8 are forecast as the
# planner would shard its roster); K2 and K3 have not built.

EXPECTED = {
    "province": {"units": 1, "expected": 1, "built": 1, "ext": 1, "members": 7, "want": 3},
    "city": {"units": 1, "expected": 1, "built": 1, "ext": 0, "members": 6, "want": 8},
    "county": {"units": 3, "expected": 4, "built": 2, "ext": 0, "members": 8, "want": 24},
}

# (unit, kind, shard, name, room id, expected persons, actual persons, unknown contacts)
GROUPS = [
    ("P", "city-youth-heads", 0, "示范省地市级团委少年部长群", "room-P", 3, 2, 1),
    ("P", "province-committee", 0, "示范省少工委委员群", "room-P2", 0, 4, 0),
    ("C1", "county-league-leaders", 0, "甲市县级少工委负责同志群", "room-C1", 8, 6, 0),
    ("K1", "county-counselors", 1, "乙1县少先队大队辅导员一群", "room-K1a", 5, 4, 0),
    ("K1", "county-counselors", 2, "乙1县少先队大队辅导员二群", "room-K1b", 4, 4, 0),
    ("K2", "county-counselors", 0, "乙2县少先队大队辅导员群", None, 7, 0, 0),
]


def build_groups(engine: Engine) -> None:
    """Insert the groups and memberships of the table above into a ``province_db``."""
    with engine.begin() as conn:
        people = [
            r[0]
            for r in conn.execute(
                select(PERSON.c.id)
                .join(POSITION, POSITION.c.person_id == PERSON.c.id)
                .order_by(PERSON.c.id)
            )
        ]
        for unit, kind, shard, name, room, expected, actual, unknown in GROUPS:
            gid = conn.execute(
                insert(GROUP).values(
                    unit_code=unit, kind=kind, shard=shard, name=name, room_id=room
                )
            ).inserted_primary_key[0]
            rows = [
                {"group_id": gid, "state": "expected", "person_id": p, "source": "blueprint"}
                for p in people[:expected]
            ]
            rows += [
                {"group_id": gid, "state": "actual", "person_id": p, "source": "platform"}
                for p in people[:actual]
            ]
            rows += [
                {
                    "group_id": gid,
                    "state": "actual",
                    "person_id": None,
                    "contact_id": f"wxid_stranger{i}",
                    "source": "platform",
                }
                for i in range(unknown)
            ]
            if rows:
                conn.execute(insert(MEMBERSHIP), rows)


# --- a relay history on the build-status groups --------------------------------------------------
# A hand-built relay history on top of ``build_groups``' world, with every number known.
#
# Groups (from ``build_groups``): 示范省 P's relay group (room-P), 甲市 C1's (room-C1), 乙1县 K1's
# two shards (room-K1a, room-K1b); K2 has not built its group, K3 has none. Notices, written as
# the relay would leave them (now: 2026-05-01 12:00 Beijing):
#
# | notice | from | deadline | ack | copies | 收到 from |
# | --- | --- | --- | --- | --- | --- |
# | T1 | P  | 4-30 17:00 (passed) | yes | P, C1, K1a sent; K1b pending | C1, K1, K1S1 |
# | T2 | K1 | 5-01 17:00 | yes | K1a, K1b sent | K1S1, K1S2 |
# | T3 | P  | 5-01 23:59 | no | P, C1, K1b sent; K1a failed | – |
#
# T1 owes 收到 from C1 (child of P), K1 K2 K3 (children of C1) and K1S1 K1S2 (children of K1):
# city 1/1, county 1/3 (乙2县、乙3县 missing), school 1/2 (乙1县第2小学 missing); groups 3/4. Seen
# from K2 only K2 itself counts (0/1); T2 never reached K2 and is not listed there.

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=TZ)

# (from unit, issued in room, issued at, deadline, ack?, {room: state}, acknowledging units)
NOTICES = [
    (
        "P",
        "room-P",
        datetime(2026, 4, 30, 9, 0, tzinfo=TZ),
        datetime(2026, 4, 30, 17, 0, tzinfo=TZ),
        True,
        {"room-P": "sent", "room-C1": "sent", "room-K1a": "sent", "room-K1b": "pending"},
        ["C1", "K1", "K1S1"],
    ),
    (
        "K1",
        "room-K1a",
        datetime(2026, 5, 1, 8, 0, tzinfo=TZ),
        datetime(2026, 5, 1, 17, 0, tzinfo=TZ),
        True,
        {"room-K1a": "sent", "room-K1b": "sent"},
        ["K1S1", "K1S2"],
    ),
    (
        "P",
        "room-P",
        datetime(2026, 5, 1, 9, 0, tzinfo=TZ),
        datetime(2026, 5, 1, 23, 59, tzinfo=TZ),
        False,
        {"room-P": "sent", "room-C1": "sent", "room-K1a": "failed", "room-K1b": "sent"},
        [],
    ),
]


def build_notices(engine: Engine) -> None:
    """``build_groups``' groups, then the notices of the table above."""
    build_groups(engine)
    with engine.begin() as conn:
        rooms = dict(conn.execute(select(GROUP.c.room_id, GROUP.c.id)).all())
        for unit, room, issued, deadline, ack, copies, acked in NOTICES:
            notice_id = conn.execute(
                insert(NOTICE).values(
                    unit_code=unit,
                    group_id=rooms[room],
                    issuer_contact="wx-office",
                    issuer_name="办公室",
                    body="请于今天报送建群情况",
                    deadline=deadline,
                    require_ack=ack,
                    target_groups=len(copies),
                    created_at=issued,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            at = issued + timedelta(minutes=1)
            conn.execute(
                insert(DELIVERY),
                [
                    {
                        "key": f"notice:{notice_id}:{rooms[r]}",
                        "kind": "notice",
                        "notice_id": notice_id,
                        "group_id": rooms[r],
                        "state": state,
                        "next_at": at,
                        "planned_at": at,
                        "sent_at": at if state == "sent" else None,
                    }
                    for r, state in copies.items()
                ],
            )
            if acked:
                conn.execute(
                    insert(ACKNOWLEDGEMENT),
                    [
                        {
                            "notice_id": notice_id,
                            "unit_code": code,
                            "group_id": rooms[room],
                            "contact_id": f"wx-{code}",
                            "at": at,
                        }
                        for code in acked
                    ],
                )


# --- provisioning on the simulated WeChat --------------------------------------------------------
# Helpers for the provisioning tests: a roster in a database, the simulated WeChat (on a
# manual clock, so that pacing passes without waiting), one-line plans, applies and syncs.

BOT = "wxid_bot"
ACCOUNTS = [AccountQuota(BOT)]


async def no_wait(_: float) -> None:
    return None


def load(engine: Engine, bp: Blueprint, folder: Path, units: list[Row], persons: list[Row]) -> None:
    """Import (or re-import) a roster given as rows."""
    folder.mkdir(parents=True, exist_ok=True)
    u, p = write_roster(folder, units, persons)
    import_roster(engine, read_roster(u, p, bp), bp)


def looked(engine: Engine, bp: Blueprint, unit: str | None = None) -> Survey:
    with engine.connect() as conn:
        return survey(conn, bp, unit, bots=[a.id for a in ACCOUNTS])


def plan(
    engine: Engine,
    bp: Blueprint,
    unit: str | None = None,
    accounts: Sequence[AccountQuota] = ACCOUNTS,
) -> Plan:
    with engine.connect() as conn:
        return build_plan(survey(conn, bp, unit, bots=[a.id for a in accounts]), accounts)


def findings(engine: Engine, bp: Blueprint, unit: str | None = None) -> list[Finding]:
    with engine.connect() as conn:
        return audit(conn, survey(conn, bp, unit, bots=[a.id for a in ACCOUNTS]))


def codes(found: list[Finding]) -> set[str]:
    return {f.code for f in found}


def new_world() -> SimulatedWeChat:
    """An empty simulated WeChat on a manual clock."""
    return SimulatedWeChat(clock=ManualClock())


def waiter(world: SimulatedWeChat) -> Callable[[float], Awaitable[None]]:
    """An apply's ``sleep``: the time passes on the world's clock, at once."""

    async def sleep(seconds: float) -> None:
        assert isinstance(world.clock, ManualClock)
        world.clock.advance(seconds)

    return sleep


def platforms(world: SimulatedWeChat, accounts: Sequence[AccountQuota]) -> dict[str, Platform]:
    return {a.id: world.account(a.id, rate=a.ops_per_second) for a in accounts}


def apply(
    engine: Engine, p: Plan, world: SimulatedWeChat, *, now: datetime | None = None
) -> ApplyReport:
    """Carry ``p`` out in ``world``; everyone on the roster with a 微信号 has WeChat there."""
    sim_build.populate(engine, world)
    return asyncio.run(
        apply_plan(
            engine,
            p,
            platforms(world, p.accounts),
            actor="cli:test",
            sleep=waiter(world),
            now=now,
        )
    )


def sync(
    engine: Engine, world: SimulatedWeChat, accounts: Sequence[AccountQuota] = ACCOUNTS
) -> None:
    """Read every room back from the simulated WeChat into the database."""
    for a in accounts:
        asyncio.run(refresh_rooms(world.account(a.id), engine, bots=[x.id for x in accounts]))


def accept(world: SimulatedWeChat) -> int:
    """Everyone invited accepts."""
    return asyncio.run(world.accept_invitations())


def join(
    world: SimulatedWeChat, room: str, contact: str, *, nickname: str = "", wechat_id: str = ""
) -> None:
    """Someone joins by themselves (a QR code, a member's invitation), with this 群昵称."""
    world.add_contact(contact, nickname or contact, wechat_id=wechat_id)
    asyncio.run(world.join(room, contact))
    world.set_nickname(room, contact, nickname)


def name_everyone(engine: Engine, world: SimulatedWeChat) -> None:
    """Every roster person in a room sets their 群昵称 in the blueprint's format (单位-姓名)."""
    with engine.connect() as conn:
        names = dict(conn.execute(select(PERSON.c.wechat_id, PERSON.c.name)).all())
    for room in world.rooms.values():
        for cid in room.members:
            if names.get(cid):
                room.members[cid] = f"单位-{names[cid]}"


def built(engine: Engine, bp: Blueprint, world: SimulatedWeChat | None = None) -> SimulatedWeChat:
    """Every required group built by the bot, everyone invited in and named properly, and
    the rooms read back: a matrix with nothing wrong."""
    world = world or new_world()
    apply(engine, plan(engine, bp), world)
    accept(world)
    name_everyone(engine, world)
    sync(engine, world)
    return world


def person_id(engine: Engine, wechat_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(PERSON.c.id).where(PERSON.c.wechat_id == wechat_id)).scalar_one()
        )


# --- the relay engine running on the simulated WeChat --------------------------------------------
# A relay world for the engine's tests, in one line: the roster's relay groups built as rooms of
# the simulated WeChat, several bot accounts in them, a delivery worker per account, and a tiny
# router that hands ``#通知`` / ``收到`` / ``#进度`` / ``#上报`` / ``#转报`` straight to the relay core
# and renders its answers, so that these tests see every answer the engine gives (the bot itself,
# which also checks the command table and keeps a bare 收到 quiet, is tested in conversation in
# ``tests/chat/test_relay_chat.py``). The clock is virtual: ``deliver()`` runs the relay until
# nothing is left (or until a time), jumping from event to event.

MORNING = datetime(2026, 11, 24, 9, 0, tzinfo=TZ)


class Wrapping:
    """A bot account seen through a test's wrapper, which overrides what it breaks (usually
    ``send_text``) and passes everything else (presence, callbacks, rooms) through."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def build_matrix(
    engine: Engine,
    bp: Blueprint,
    accounts: Sequence[str],
    *,
    world: SimulatedWeChat | None = None,
    shards: dict[str, int] | None = None,
    without_bots: Iterable[str] = (),
    kinds: Iterable[str] | None = None,
    unbuilt: Iterable[str] = (),
) -> dict[tuple[str, str, int], str]:
    """Build every relay group (or ``kinds``) of the roster as a room holding the expected
    members and the bot ``accounts`` (none for units in ``without_bots``; units in ``unbuilt``
    get no group); ``shards`` splits a unit's group, children dealt round-robin. Rooms go into
    ``world`` if given, else they get synthetic ids. Returns (unit code, kind, shard) → room id."""
    wanted = set(kinds) if kinds is not None else {g.key for g in bp.groups if g.relay}
    shards = shards or {}
    skip = set(without_bots)
    missing = set(unbuilt)
    with engine.connect() as conn:
        units = conn.execute(
            select(UNIT.c.code, UNIT.c.name, UNIT.c.level, UNIT.c.parent_code).where(
                UNIT.c.removed_at.is_(None)
            )
        ).all()
        staff: dict[tuple[str, str], list[tuple[int, str, str | None]]] = defaultdict(list)
        for r in conn.execute(
            select(
                POSITION.c.unit_code,
                POSITION.c.role,
                PERSON.c.id,
                PERSON.c.name,
                PERSON.c.wechat_id,
            )
            .join(PERSON, PERSON.c.id == POSITION.c.person_id)
            .order_by(POSITION.c.unit_code, POSITION.c.seq)
        ):
            staff[(r.unit_code, r.role)].append((r.id, r.name, r.wechat_id))
    children: dict[str, list[str]] = defaultdict(list)
    for u in units:
        if u.parent_code:
            children[u.parent_code].append(u.code)
    rooms: dict[tuple[str, str, int], str] = {}
    with engine.begin() as conn:
        for spec in bp.groups:
            if spec.key not in wanted:
                continue
            for u in (u for u in units if u.level == spec.led_by and u.code not in missing):
                n = shards.get(u.code, 1)
                kids = sorted(children[u.code])
                for shard in range(1, n + 1) if n > 1 else [0]:
                    mine = kids if n == 1 else kids[shard - 1 :: n]
                    people: list[tuple[int, str, str | None, bool]] = []
                    for sel in spec.members:
                        sources = [u.code] if sel.scope == "self" else mine
                        for code in sources:
                            holders = staff[(code, sel.role)][: sel.max or None]
                            admin = any(
                                a.role == sel.role and a.scope == sel.scope for a in spec.admins
                            )
                            people += [(pid, name, wx, admin) for pid, name, wx in holders]
                    bots = [] if u.code in skip else list(accounts)
                    name = spec.name.format(
                        unit=u, shard="一二三四五六七八九十"[shard - 1] if shard else ""
                    )
                    contacts = [wx for _, _, wx, _ in people if wx]
                    if world is not None:
                        for _, pname, wx, _ in people:
                            if wx:
                                world.add_contact(wx, pname)
                        owner = bots[0] if bots else contacts[0]
                        room_id = world.create_room(owner, name, [*bots, *contacts])
                    else:
                        room_id = f"room-{u.code}-{spec.key}-{shard}"
                    gid = conn.execute(
                        insert(GROUP).values(
                            unit_code=u.code, kind=spec.key, shard=shard, name=name, room_id=room_id
                        )
                    ).inserted_primary_key[0]  # type: ignore[index]
                    rows = [
                        {
                            "group_id": gid,
                            "state": state,
                            "person_id": pid,
                            "contact_id": wx,
                            "is_admin": admin,
                            "source": "blueprint" if state == "expected" else "platform",
                        }
                        for pid, _, wx, admin in people
                        for state in ("expected", "actual")
                        if state == "expected" or wx
                    ]
                    if rows:
                        conn.execute(insert(MEMBERSHIP), rows)
                    rooms[(u.code, spec.key, shard)] = room_id
    return rooms


def count(engine: Engine, table: Any) -> int:
    """Rows in a table (a model class)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class RelayWorld:
    """A roster database made into a running relay on the simulated WeChat."""

    def __init__(
        self,
        engine: Engine,
        bp: Blueprint,
        *,
        accounts: Sequence[str] = ("bot1", "bot2"),
        options: RelayOptions | None = None,
        start: datetime = MORNING,
        wrap: Any = None,
        wall_clock: bool = False,
        **build: Any,
    ) -> None:
        self.engine = engine
        self.bp = bp
        self.clock = VirtualClock(start)
        # on the wall clock, as ``qunmatrix run`` drives it (its accounts side by side on
        # PostgreSQL); the virtual one lets a day pass in moments, turn by turn
        runs_on: Clock = SystemClock() if wall_clock else self.clock
        self.world = SimulatedWeChat(clock=time.monotonic if wall_clock else self.clock)
        # the world's own rate limit is generous: the engine paces itself (options.rate)
        self.bots: list[SimulatedAccount] = [
            self.world.account(a, f"群矩阵助手{i + 1}", rate=100.0, burst=100)
            for i, a in enumerate(accounts)
        ]
        self.env = RelayEnv(engine, bp, options or RelayOptions(rate=1.0, jitter=0.0), TZ, runs_on)
        self.all_rooms = build_matrix(engine, bp, accounts, world=self.world, **build)
        relay_kinds = {g.key for g in bp.groups if g.relay}
        self.rooms = {(u, s): r for (u, k, s), r in self.all_rooms.items() if k in relay_kinds}
        self.wrap = wrap or (lambda account: account)
        self.workers: list[DeliveryWorker] = []
        self.restart()

    # --- the bot's life -------------------------------------------------------------------------

    def restart(self, faults: Any = None, accounts: Iterable[str] | None = None) -> None:
        """A fresh bot process: new workers (for ``accounts``, default all), taking back what
        the last one left half-done."""
        self.workers = []
        running = set(accounts) if accounts is not None else {b.account_id for b in self.bots}
        for i, acc in enumerate(self.bots):
            acc.message_handlers.clear()
            acc.presence_handlers.clear()
            if acc.account_id not in running:
                continue
            worker = DeliveryWorker(self.env, self.wrap(acc), compose, faults=faults, seed=i)
            acc.on_message(worker.observe)
            acc.on_message(self._listener(acc))
            run(worker.start())
            self.workers.append(worker)

    def deliver(self, until: datetime | None = None) -> None:
        """Run the relay (sends, reminders, escalation) until idle or until ``until``. On the
        wall clock, without ``until``, a reminder due later is not waited for."""
        waits = until is not None or self.env.clock is self.clock
        run(
            drive(
                self.env,
                self.workers,
                until=until,
                jobs=lambda: run_due_jobs(self.env),
                next_job=(lambda: next_job_at(self.env)) if waits else None,
            )
        )

    # --- people talking -------------------------------------------------------------------------

    def run_world(self, coro: Any) -> Any:
        """Let something happen in the world (a join, a leave)."""
        return run(coro)

    def say(self, contact_id: str, room_id: str, text: str) -> str:
        """``contact_id`` says ``text`` in the room; returns what the bot replied."""
        mark = len(self.world.messages())
        run(self.world.say(room_id, contact_id, text))
        bots = {b.account_id for b in self.bots}
        return "\n".join(
            m.text for m in self.world.messages(room_id, since=mark) if m.contact_id in bots
        )

    def _listener(self, account: SimulatedAccount) -> Any:
        async def on_message(msg: IncomingMessage) -> None:
            if msg.is_self or msg.contact_id in {b.account_id for b in self.bots}:
                return
            members = self.world.room(msg.room_id).members
            speaker = next(
                b
                for b in self.bots
                if b.account_id in members and b.message_handlers and b.presence is Presence.ONLINE
            )
            if speaker is not account:  # one account answers per room
                return
            try:
                reply = self.dispatch(msg)
            except MatrixError as exc:
                reply = str(exc)
            if reply:
                await account.send_text(msg.room_id, reply)

        return on_message

    def dispatch(self, msg: IncomingMessage) -> str | None:
        """The few commands the relay owns, as the bot will route them."""
        text = msg.text.strip()
        env, room, who = self.env, msg.room_id, msg.contact_id
        for command, handler in (
            (
                "#通知",
                lambda rest: render(
                    "relay/notice_plan.j2", plan=issue_notice(env, room, who, rest)
                ),
            ),
            (
                "#进度",
                lambda rest: render(
                    "relay/progress.j2", p=notice_progress(env, _code(rest), asker=who), final=False
                ),
            ),
            (
                "#上报",
                lambda rest: render(
                    "relay/report_receipt.j2", r=submit_report(env, room, who, rest)
                ),
            ),
            (
                "#转报",
                lambda rest: render("relay/report_receipt.j2", r=forward_report(env, who, rest)),
            ),
        ):
            if text.startswith(command):
                return str(handler(text[len(command) :].strip()))
        if (ack := parse_ack(text)) is not None:
            return render("relay/ack.j2", a=acknowledge(env, room, who, ack))
        watch_message(env, room, who, text)
        return None

    # --- looking -----------------------------------------------------------------------------

    def room(self, unit_code: str, shard: int = 0, kind: str | None = None) -> str:
        """The unit's relay group (or its group of ``kind``)."""
        if kind is not None:
            return self.all_rooms[(unit_code, kind, shard)]
        return self.rooms[(unit_code, shard)]

    def texts(self, room_id: str) -> list[str]:
        return [m.text for m in self.world.messages(room_id)]

    def bot_messages(self, room_id: str | None = None) -> list[SimMessage]:
        bots = {b.account_id for b in self.bots}
        return [m for m in self.world.messages(room_id) if m.contact_id in bots]

    def copies(self, room_id: str, code: str) -> list[str]:
        """The copies of notice ``code`` in a room, in order."""
        return [m.text for m in self.bot_messages(room_id) if f"【通知 {code}】" in m.text]

    def contact(self, unit_code: str, role: str, nth: int = 0) -> str:
        """The WeChat id of the ``nth`` holder of ``role`` at ``unit_code``."""
        with self.engine.connect() as conn:
            ids = (
                conn.execute(
                    select(PERSON.c.wechat_id)
                    .join(POSITION, POSITION.c.person_id == PERSON.c.id)
                    .where(POSITION.c.unit_code == unit_code, POSITION.c.role == role)
                    .order_by(POSITION.c.seq)
                )
                .scalars()
                .all()
            )
        return str(ids[nth])


def _code(text: str) -> int:
    found = parse_code(text, "T")
    if found is None:
        raise MatrixError("看不懂通知编号", fix="请这样发送：#进度 T1")
    return found


# --- Wechaty: the province built, and as the mock puppet service reads it ------------------------
# Worlds for the Wechaty tests: the province of ``tests.worlds`` with its groups built in a
# simulated WeChat, and the same world written out for the Node mock puppet service.

ACCOUNT = "qunmatrix-bot"
COUNTY_OFFICE = "wxK1n008"  # K1's office staff: administers K1's counselor group
SCHOOL_COUNSELOR = "wxK1S1n012"  # a brigade counselor in that group: a member, not an office


def provisioned_world(engine: Engine, bp: Blueprint) -> SimulatedWeChat:
    """Every group of the loaded roster planned and built in a fresh simulated WeChat by
    ``ACCOUNT`` (paced generously on real time: these tests are not about pacing)."""
    world = SimulatedWeChat(max_room_size=bp.matrix.max_group_size)
    account = world.account(ACCOUNT, "群矩阵助手", rate=100.0, burst=100)
    quota = AccountQuota(ACCOUNT, ops_per_second=100.0)
    days = SimCalendar(ManualClock())  # only dates the apply's daily quotas
    asyncio.run(sim_build.build_matrix(engine, bp, world, {ACCOUNT: account}, [quota], days))
    return world


def mock_world(world: SimulatedWeChat, account: str = ACCOUNT) -> dict[str, Any]:
    """``world`` as ``tests/wire/mock_server.js`` reads it: same contacts, rooms and ids."""
    return {
        "self": {"id": account, "name": world.contacts[account].name},
        "contacts": [
            {"id": c.contact_id, "name": c.name}
            for c in world.contacts.values()
            if c.contact_id != account
        ],
        "rooms": [
            {
                "id": r.room_id,
                "topic": r.topic,
                "members": list(r.members),
                "owner": r.owner_id,
                "admins": sorted(r.admins),
            }
            for r in world.rooms.values()
        ],
    }


def room_of(world: SimulatedWeChat, topic: str) -> str:
    """The id of the room called ``topic``."""
    room = world.find_room(topic)
    assert room is not None, f"no room {topic}"
    return room.room_id
