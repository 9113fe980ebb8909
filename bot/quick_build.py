"""Build the matrix straight into the simulated WeChat: a stand-in for issue 3's planner.

Until the provisioning planner merges, the demo, ``qunmatrix console --provision``, the tests
and the benchmark need groups to talk in. ``expected_groups`` reads the blueprint selectors
naively (quotas take the first holders by roster order; a group over the size cap is split
by whole child units); ``provision_world`` writes ``wgroup`` and expected ``membership`` rows,
creates each room with its members and admins, and records them as actual members. ``mirror_world`` recreates rooms already
recorded in the database. Replace all three with issue 3's plan and apply when it lands.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace

from sqlalchemy import Connection, Engine, delete, insert, select, update

from bot.simulated import SimulatedAccount, SimulatedWeChat
from bot.tables import GROUP, MEMBERSHIP, PERSON, POSITION
from matrix.blueprint import Blueprint, GroupSpec, Selector
from matrix.numerals import chinese_number  # 一, 二 … for 一群, 二群
from matrix.tree import UnitTree


@dataclass
class PlannedGroup:
    unit_code: str
    kind: str
    shard: int
    name: str
    members: list[int] = field(default_factory=list)  # person ids, leading office first
    admins: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class BuildReport:
    groups: int
    rooms_created: int
    members: int
    without_wechat: int  # expected people with no WeChat id: they cannot be added


def _holders(conn: Connection) -> dict[tuple[str, str], list[int]]:
    rows = conn.execute(
        select(POSITION.c.unit_code, POSITION.c.role, POSITION.c.person_id)
        .select_from(POSITION.join(PERSON, PERSON.c.id == POSITION.c.person_id))
        .where(PERSON.c.removed_at.is_(None))
        .order_by(POSITION.c.unit_code, POSITION.c.role, POSITION.c.seq, POSITION.c.id)
    )
    holders: dict[tuple[str, str], list[int]] = defaultdict(list)
    for unit, role, person in rows:
        holders[(unit, role)].append(person)
    return holders


def _scope(tree: UnitTree, unit: str, sel: Selector) -> list[str]:
    if sel.scope == "self":
        return [unit]
    if sel.scope == "children":
        return tree.children(unit)
    if sel.scope == "descendants":
        return list(tree.subtree(unit))[1:]
    parent = tree.parent(unit)
    return [parent] if parent else []


def _plan(
    tree: UnitTree, holders: dict[tuple[str, str], list[int]], unit: str, spec: GroupSpec, cap: int
) -> list[PlannedGroup]:
    office: list[int] = []
    blocks: dict[str, list[int]] = defaultdict(list)  # by selected unit, kept whole in a shard
    for sel in spec.members:
        for x in _scope(tree, unit, sel):
            people = holders.get((x, sel.role), [])[: sel.max]
            (office if sel.scope == "self" else blocks[x]).extend(people)
    admins = [
        p
        for sel in spec.admins
        for x in _scope(tree, unit, sel)
        for p in holders.get((x, sel.role), [])
    ]
    office = list(dict.fromkeys([*admins, *office]))
    if not set(office).union(*blocks.values()) - set(admins):
        return []  # nobody to administer: the group is not built
    shards: list[list[int]] = [list(office)]
    room = cap - 1  # one seat for the bot account
    for block in blocks.values():
        if len(shards[-1]) + len(block) > room and len(shards[-1]) > len(office):
            shards.append(list(office))
        shards[-1].extend(p for p in block if p not in shards[-1])
    names = SimpleNamespace(name=tree.name(unit), code=unit)
    split = len(shards) > 1
    return [
        PlannedGroup(
            unit,
            spec.key,
            i if split else 0,
            spec.name.format(unit=names, shard=chinese_number(i) if split else ""),
            members,
            admins,
        )
        for i, members in enumerate(shards, start=1)
    ]


def expected_groups(engine: Engine, bp: Blueprint, tree: UnitTree) -> list[PlannedGroup]:
    """Every group of every unit with its expected members; a group its selectors fill with
    admins only is skipped."""
    with engine.connect() as conn:
        holders = _holders(conn)
    planned: list[PlannedGroup] = []
    for unit in tree.subtree(tree.root):
        for spec in bp.groups_led_by(tree.level(unit)):
            planned.extend(_plan(tree, holders, unit, spec, bp.matrix.max_group_size))
    return planned


def provision_world(
    engine: Engine,
    bp: Blueprint,
    tree: UnitTree,
    world: SimulatedWeChat,
    accounts: list[SimulatedAccount],
) -> BuildReport:
    """Write the expected groups to the database and create their rooms, owned by the accounts
    in turn. Groups that already have a room in this world are left alone."""
    planned = expected_groups(engine, bp, tree)
    created = members = missing = 0
    with engine.begin() as conn:
        contacts = {
            r[0]: (r[1], r[2])
            for r in conn.execute(select(PERSON.c.id, PERSON.c.wechat_id, PERSON.c.name))
            if r[1]
        }
        existing = {
            (r[1], r[2], r[3]): (r[0], r[4])
            for r in conn.execute(
                select(GROUP.c.id, GROUP.c.unit_code, GROUP.c.kind, GROUP.c.shard, GROUP.c.room_id)
            )
        }
        for n, group in enumerate(planned):
            found = existing.get((group.unit_code, group.kind, group.shard))
            if found is None:
                gid = conn.execute(
                    insert(GROUP).values(
                        unit_code=group.unit_code,
                        kind=group.kind,
                        shard=group.shard,
                        name=group.name,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                room_id = None
            else:
                gid, room_id = found
            conn.execute(
                delete(MEMBERSHIP).where(
                    MEMBERSHIP.c.group_id == gid, MEMBERSHIP.c.state == "expected"
                )
            )
            admins = set(group.admins)
            conn.execute(
                insert(MEMBERSHIP),
                [
                    {
                        "group_id": gid,
                        "state": "expected",
                        "person_id": p,
                        "contact_id": contacts.get(p, (None, ""))[0],
                        "is_admin": p in admins,
                        "source": "blueprint",
                    }
                    for p in group.members
                ],
            )
            if room_id and room_id in world.rooms:
                continue
            owner = accounts[n % len(accounts)]
            ids = []
            for p in group.members:
                if p in contacts:
                    wechat, name = contacts[p]
                    world.add_contact(wechat, name)
                    ids.append(wechat)
                else:
                    missing += 1
            room_id = world.create_room(owner.account_id, group.name, ids)
            room = world.rooms[room_id]
            room.admins.update(
                [contacts[p][0] for p in group.admins if p in contacts][: world.max_admins]
            )
            conn.execute(update(GROUP).where(GROUP.c.id == gid).values(room_id=room_id))
            # who is in the new room now, as issue 3's apply will record it: summaries count
            # these as the group's 联系人 and joined members
            conn.execute(
                delete(MEMBERSHIP).where(
                    MEMBERSHIP.c.group_id == gid, MEMBERSHIP.c.state == "actual"
                )
            )
            conn.execute(
                insert(MEMBERSHIP),
                [
                    {
                        "group_id": gid,
                        "state": "actual",
                        "person_id": p,
                        "contact_id": contacts[p][0],
                        "is_admin": contacts[p][0] in room.admins,
                        "source": "platform",
                    }
                    for p in group.members
                    if p in contacts
                ],
            )
            created += 1
            members += len(ids)
    return BuildReport(len(planned), created, members, missing)


def mirror_world(engine: Engine, world: SimulatedWeChat, accounts: list[SimulatedAccount]) -> int:
    """Recreate, under their recorded ids, the rooms of groups the database already has
    (members: actual rows if any were recorded, else expected). Returns how many."""
    with engine.connect() as conn:
        groups = conn.execute(
            select(GROUP.c.id, GROUP.c.name, GROUP.c.room_id)
            .where(GROUP.c.room_id.is_not(None))
            .order_by(GROUP.c.id)
        ).all()
        rows = conn.execute(
            select(
                MEMBERSHIP.c.group_id,
                MEMBERSHIP.c.state,
                PERSON.c.wechat_id,
                PERSON.c.name,
                MEMBERSHIP.c.is_admin,
            )
            .select_from(MEMBERSHIP.join(PERSON, PERSON.c.id == MEMBERSHIP.c.person_id))
            .where(PERSON.c.wechat_id.is_not(None))
        ).all()
    by_group: dict[tuple[int, str], list[tuple[str, str, bool]]] = defaultdict(list)
    for gid, state, wechat, name, is_admin in rows:
        by_group[(gid, state)].append((wechat, name, is_admin))
    made = 0
    for n, (gid, name, room_id) in enumerate(groups):
        if room_id in world.rooms:
            continue
        people = by_group.get((gid, "actual")) or by_group.get((gid, "expected"), [])
        for wechat, person_name, _ in people:
            world.add_contact(wechat, person_name)
        owner = accounts[n % len(accounts)].account_id
        world.create_room(owner, name, [w for w, _, _ in people], room_id=room_id)
        world.rooms[room_id].admins.update([w for w, _, a in people if a][: world.max_admins])
        made += 1
    return made
