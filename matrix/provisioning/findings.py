"""The audit: what is wrong with the matrix today, as findings with a stable code.

Each finding names the unit (its code), the group (its room name), the person (roster id) where
one is concerned, a severity, and a fix in Chinese. Codes are stable: scripts and summaries
count them. The catalogue ``KINDS`` lists every code with its severity and its fix.

=====================  ========  ===========================================================
code                   severity  meaning
=====================  ========  ===========================================================
GROUP_MISSING          error     a unit has not built a group the blueprint requires
NO_RESPONSIBLE_PERSON  error     nobody on the roster can be the group's 专人负责
NO_ADMIN               error     none of the expected admins is an admin of the room
OVER_CAPACITY          error     the room holds more than WeChat's cap (or the pinned alone do)
UNKNOWN_MEMBER         warning   in the room, bound to no roster person
STALE_MEMBER           warning   in the room, no longer on the roster
WRONG_GROUP            warning   in the room, but belongs in another group (or shard)
DUPLICATE_MEMBER       warning   the same person twice in a room, or in two shards of a group
MISSING_MEMBER         warning   expected in the room and not in it
WRONG_ADMIN            warning   an admin of the room who is not an expected admin
QUOTA_SHORT            warning   a unit supplies fewer holders of a role than the quota
NICKNAME_FORMAT        info      群昵称 not in the blueprint's pattern (e.g. 单位-姓名)
EXTRA_MEMBER           info      on the roster, but not expected in this group at all
=====================  ========  ===========================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from matrix.provisioning.membership import MAX_ADMINS, OWNER_SEATS, Survey, Target
from matrix.provisioning.sharding import group_name
from matrix.tables import PERSON

SEVERITIES = ("error", "warning", "info")
SEVERITY_LABELS = {"error": "严重", "warning": "警告", "info": "提示"}


@dataclass(frozen=True)
class FindingKind:
    """One code of the catalogue: its severity, a short Chinese title, and the fix as
    ``str.format`` templates over the finding's details (a few codes have variants)."""

    code: str
    severity: str
    title: str
    fix: str
    variants: tuple[tuple[str, str], ...] = ()

    def fix_for(self, variant: str | None) -> str:
        return dict(self.variants).get(variant or "", self.fix)


KINDS: dict[str, FindingKind] = {
    k.code: k
    for k in (
        FindingKind(
            "GROUP_MISSING",
            "error",
            "未建群",
            "请{unit}牵头建立「{group}」；运行 qunmatrix plan --unit {unit_code} 查看建群步骤",
        ),
        FindingKind(
            "NO_RESPONSIBLE_PERSON",
            "error",
            "无专人负责",
            "名册中{unit}没有{role}，请补录名册后由其负责「{group}」",
        ),
        FindingKind(
            "NO_ADMIN",
            "error",
            "无管理员",
            "请群主将规定的管理员（{roles}，最多 {most} 名）设为「{group}」的管理员；"
            "运行 qunmatrix plan 可自动设置",
            (
                ("none", "名册中没有可担任「{group}」管理员的{roles}，请先补录名册"),
                (
                    "unreachable",
                    "规定的管理员（{roles}）没有微信号、也未绑定微信，机器人无法邀请其入群或设为"
                    "管理员：请其扫码入群后在群里发送 #绑定 手机号，或在名册中补录其微信号后"
                    "重新导入，再由群主将其设为「{group}」的管理员",
                ),
            ),
        ),
        FindingKind(
            "OVER_CAPACITY",
            "error",
            "超出人数上限",
            "「{group}」有 {count} 人，超过 {cap} 人上限，请按 qunmatrix plan 分群",
            (
                (
                    "pinned",
                    "每个分群都要包含的本级人员已有 {count} 人，超过 {cap} 人上限，"
                    "无法分群，请精简管理员或本级人员",
                ),
            ),
        ),
        FindingKind(
            "UNKNOWN_MEMBER",
            "warning",
            "名册外人员",
            "联系人 {contact}（群昵称「{nickname}」）不在名册中：请管理员核实身份，"
            "批准并绑定到名册人员，或将其移出「{group}」",
            (
                (
                    "held",
                    "联系人 {contact}（群昵称「{nickname}」）正在等待入群审核，请管理员批准或拒绝",
                ),
            ),
        ),
        FindingKind(
            "STALE_MEMBER", "warning", "已不在名册", "{person}已不在名册中，请将其移出「{group}」"
        ),
        FindingKind(
            "WRONG_GROUP",
            "warning",
            "进错群",
            "{person}应在「{home}」，请将其移出「{group}」并邀请到该群",
        ),
        FindingKind(
            "DUPLICATE_MEMBER",
            "warning",
            "重复入群",
            "{person}在「{group}」中有两个微信账号，请保留当前绑定的账号，移出另一个",
            (("shards", "{person}同时在「{other}」和「{group}」，请只保留在一个分群"),),
        ),
        FindingKind(
            "MISSING_MEMBER",
            "warning",
            "未入群",
            "请邀请{person}加入「{group}」；运行 qunmatrix plan 可自动邀请",
            (
                ("invited", "已邀请{person}加入「{group}」，请提醒其接受邀请"),
                (
                    "unreachable",
                    "{person}没有微信号，也未绑定微信，机器人无法邀请：请人工邀请其加入「{group}」，"
                    "或在名册中补录微信号",
                ),
            ),
        ),
        FindingKind(
            "WRONG_ADMIN",
            "warning",
            "管理员不符",
            "{who}不是「{group}」规定的管理员，请群主取消其管理员身份，或核实名册",
        ),
        FindingKind(
            "QUOTA_SHORT",
            "warning",
            "名额不足",
            "{unit}的{role}只有 {have} 名，规定每单位至少 {need} 名，请补录名册",
        ),
        FindingKind(
            "NICKNAME_FORMAT",
            "info",
            "群昵称不规范",
            "请{person}把在「{group}」的群昵称改为「{hint}」格式（现为「{nickname}」）",
            (("unset", "请{person}在「{group}」设置群昵称，格式为「{hint}」（现在没有群昵称）"),),
        ),
        FindingKind(
            "EXTRA_MEMBER",
            "info",
            "非本群成员",
            "{person}在名册上，但按规则不属于「{group}」，请核实后移出",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong. ``unit`` is a unit code, ``group`` a room name, ``person`` a roster id."""

    code: str
    severity: str
    unit: str
    group: str | None
    person: int | None
    fix: str
    contact: str | None = None
    person_name: str = ""

    @property
    def title(self) -> str:
        return KINDS[self.code].title

    @property
    def who(self) -> str:
        """The person as a reader knows them: the roster name, else the WeChat contact."""
        return self.person_name or self.contact or ""

    def to_json(self) -> dict[str, Any]:
        """``person`` stays the roster id (scripts join on it); ``person_name`` is for people."""
        return {
            "code": self.code,
            "severity": self.severity,
            "unit": self.unit,
            "group": self.group,
            "person": self.person,
            "person_name": self.person_name,
            "contact": self.contact,
            "fix": self.fix,
        }


@dataclass(slots=True)
class _Raw:
    code: str
    unit: str
    group: str | None
    person: int | None
    contact: str | None
    details: dict[str, Any]


def audit(conn: Connection, survey: Survey) -> list[Finding]:
    """Every finding in the scope of ``survey``, unit by unit as the tree goes."""
    raws = list(_collect(survey))
    names = person_names(conn, (r.person for r in raws if r.person is not None))
    view = survey.view
    out = []
    for r in raws:
        kind = KINDS[r.code]
        person = names.get(r.person, f"人员{r.person}") if r.person is not None else ""
        details = {
            "unit": view.name(r.unit) if r.unit in view.units else r.unit,
            "unit_code": r.unit,
            "group": r.group or "",
            "person": person,
            "contact": r.contact or "",
            "who": person or f"联系人 {r.contact}",
            **r.details,
        }
        fix = kind.fix_for(details.pop("variant", None)).format(**details)
        out.append(
            Finding(r.code, kind.severity, r.unit, r.group, r.person, fix, r.contact, person)
        )
    return sorted(out, key=_order(survey))


def person_names(conn: Connection, ids: Iterable[int]) -> dict[int, str]:
    """Roster names of the persons ``ids`` (a finding or a plan names only a few)."""
    out: dict[int, str] = {}
    ordered = sorted(set(ids))
    for i in range(0, len(ordered), 500):
        out.update(
            (int(p), str(n))
            for p, n in conn.execute(
                select(PERSON.c.id, PERSON.c.name).where(PERSON.c.id.in_(ordered[i : i + 500]))
            )
        )
    return out


def _order(survey: Survey) -> Any:
    """Sort key: the tree order of the leading unit (a school's findings go with its county),
    then severity."""
    rank: dict[str, int] = {}
    for t in survey.targets:
        rank.setdefault(t.unit, len(rank))
    for e in survey.expectations:
        rank.setdefault(e.unit, len(rank))
    severity = {s: i for i, s in enumerate(SEVERITIES)}
    view = survey.view

    def key(f: Finding) -> tuple[int, int]:
        place = rank.get(f.unit)
        if place is None:
            up = view.parent(f.unit) if f.unit in view.units else None
            place = rank.get(up or "", len(rank))
        return place, severity[f.severity]

    return key


def _collect(survey: Survey) -> Iterator[_Raw]:
    bp, view = survey.bp, survey.view
    role_label = {r.key: r.label for r in bp.roles}
    short: dict[tuple[str, str], list[Any]] = {}
    for s in survey.shortfalls:
        short.setdefault((s.leader, s.kind), []).append(s)
    targets: dict[tuple[str, str], list[Target]] = {}
    for t in survey.targets:
        targets.setdefault((t.unit, t.kind), []).append(t)
    overfull = {(e.unit, e.spec.key) for e in survey.overfull}
    strays: list[tuple[Target, int, str | None]] = []
    for exp in survey.expectations:
        key = (exp.unit, exp.spec.key)
        base = group_name(exp.spec.name, view.name(exp.unit), exp.unit, 0)
        if exp.spec.responsible is not None and exp.responsible is None:
            role = role_label[exp.spec.responsible.role]
            yield _Raw("NO_RESPONSIBLE_PERSON", exp.unit, base, None, None, {"role": role})
        if key in overfull:
            yield _Raw(
                "OVER_CAPACITY",
                exp.unit,
                base,
                None,
                None,
                {"variant": "pinned", "count": len(exp.pinned), "cap": bp.matrix.max_group_size},
            )
        for s in short.get(key, ()):
            yield _Raw(
                "QUOTA_SHORT",
                s.unit,
                base,
                None,
                None,
                {"role": role_label[s.role], "have": s.have, "need": s.need},
            )
        seen_in: dict[int, str] = {}
        admin_roles = "、".join(dict.fromkeys(role_label[sel.role] for sel in exp.spec.admins))
        everywhere = set(exp.pinned)  # expected in every shard: not a duplicate there
        for t in targets.get(key, []):
            if t.built:
                yield from _room(survey, t, seen_in, everywhere, strays, admin_roles)
            elif t.required:
                yield _Raw("GROUP_MISSING", t.unit, t.name, None, None, {})
    yield from _strays(survey, strays)


def _room(
    survey: Survey,
    t: Target,
    seen_in: dict[int, str],
    everywhere: set[int],
    strays: list[tuple[Target, int, str | None]],
    admin_roles: str,
) -> Iterator[_Raw]:
    """Findings about one room that exists."""
    assert t.room is not None
    bp, actual = survey.bp, survey.actual
    gid = t.room.id
    seats = actual.seats.get(gid, [])
    expected = set(t.members)
    admins = set(t.admins)
    approved = actual.approved.get(gid, set())
    held = actual.held.get(gid, set())
    pattern = re.compile(bp.matrix.nickname_pattern)
    count = len(seats) + OWNER_SEATS
    if count > bp.matrix.max_group_size:
        yield _Raw(
            "OVER_CAPACITY",
            t.unit,
            t.name,
            None,
            None,
            {"count": count, "cap": bp.matrix.max_group_size},
        )
    here: set[int] = set()
    has_admin = False
    for pid, cid, is_admin, nickname in seats:
        if pid is None:
            if cid in approved:
                continue
            yield _Raw(
                "UNKNOWN_MEMBER",
                t.unit,
                t.name,
                None,
                cid,
                {"variant": "held" if cid in held else None, "nickname": nickname or ""},
            )
            if is_admin:
                yield _Raw("WRONG_ADMIN", t.unit, t.name, None, cid, {})
            continue
        if pid in here:
            yield _Raw("DUPLICATE_MEMBER", t.unit, t.name, pid, cid, {})
            continue
        here.add(pid)
        if pid in seen_in and pid not in everywhere:
            other = seen_in[pid]
            yield _Raw(
                "DUPLICATE_MEMBER", t.unit, t.name, pid, cid, {"variant": "shards", "other": other}
            )
        seen_in.setdefault(pid, t.name)
        if is_admin:
            if pid in admins:
                has_admin = True
            else:
                yield _Raw("WRONG_ADMIN", t.unit, t.name, pid, cid, {})
        if pid not in expected:
            if cid not in approved:
                strays.append((t, pid, cid))
            continue
        if not pattern.match(nickname or ""):
            yield _Raw(
                "NICKNAME_FORMAT",
                t.unit,
                t.name,
                pid,
                cid,
                {
                    "variant": None if nickname else "unset",
                    "hint": bp.matrix.nickname_hint,
                    "nickname": nickname or "",
                },
            )
    if not has_admin:
        yield _Raw(
            "NO_ADMIN",
            t.unit,
            t.name,
            None,
            None,
            {"variant": _no_admin_variant(t, survey), "roles": admin_roles, "most": MAX_ADMINS},
        )
    invited = actual.invited.get(gid, set())
    unreachable = survey.view.unreachable
    for pid in t.members:
        if pid not in here:
            variant = "invited" if pid in invited else "unreachable" if pid in unreachable else None
            yield _Raw("MISSING_MEMBER", t.unit, t.name, pid, None, {"variant": variant})


def _no_admin_variant(t: Target, survey: Survey) -> str | None:
    """Why a room has no admin: nobody on the roster to be one, nobody the bots can reach
    (no 微信号, no binding: automatic setting cannot help), or simply not yet appointed."""
    if not t.admins:
        return "none"
    if all(pid in survey.view.unreachable for pid in t.admins):
        return "unreachable"
    return None


def _strays(survey: Survey, strays: list[tuple[Target, int, str | None]]) -> Iterator[_Raw]:
    """Members a room should not have: left the roster, belong elsewhere, or nowhere."""
    wanted = {pid for _, pid, _ in strays}
    where: dict[int, Target] = {}
    if wanted:
        for t in survey.targets:
            for pid in t.members:
                if pid in wanted:
                    where.setdefault(pid, t)
    for t, pid, cid in strays:
        if pid in survey.actual.removed:
            yield _Raw("STALE_MEMBER", t.unit, t.name, pid, cid, {})
        elif pid in where:
            yield _Raw("WRONG_GROUP", t.unit, t.name, pid, cid, {"home": where[pid].name})
        else:
            yield _Raw("EXTRA_MEMBER", t.unit, t.name, pid, cid, {})
