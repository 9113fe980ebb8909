"""Matching a group's unbound members to the roster by what they show (``#匹配``).

In a group built by hand most members are contacts the bot cannot bind by 微信号 (the roster
rarely has it). What they show is their 群昵称 (the blueprint's ``nickname_pattern``, e.g.
单位-姓名, written with spaces, full-width dashes, —, _ or ·, or just a name) and their WeChat
name. ``suggest`` reads those against the persons the rules put in the group (``join_review``'s
``expected_view``: never a person of a unit outside it) and proposes one person per member with a
reason and a confidence:

- ``sure``: one expected person carries that name (and the unit written, if any, is theirs);
- ``ambiguous``: two or more do (two 王伟 in one county), two members point at one person, or
  the person has another WeChat already (anyone may write their name): every candidate is
  listed, none guessed;
- ``none``: nobody expected carries the name, or the unit written is not theirs.

The expected persons are indexed once by normalised name, so a group of 500 costs a handful of
queries, never one per member. ``store`` keeps the suggestions numbered per group (one number
per confirmable person: an ambiguous member gets one per candidate) so that ``#确认匹配 1,3,5-9``
names what ``#匹配`` showed; a later ``#匹配`` replaces them and they lapse like held joiners do.
``confirm`` binds the chosen ones through ``binding.bind_by_admin``, the path ``#同意`` takes,
one audit entry per binding. A person with office authority is never confirmed in bulk: only a
number named alone, by an office of that person's unit or above (``may_confirm_office``).
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, or_, select, update

from matrix.blueprint import Blueprint
from matrix.db import raw_rows
from matrix.errors import MatrixError
from matrix.platform import Member
from matrix.provisioning.authority import office_roles
from matrix.provisioning.binding import bind_by_admin, contacts_of, lookup
from matrix.provisioning.join_review import (
    JoinDecision,
    TimeoutPolicy,
    admit_bound,
    expected_view,
    review_joins,
)
from matrix.tables import GROUP, JOIN_REQUEST, MATCH_SUGGESTION, MEMBERSHIP, PERSON, POSITION, UNIT

SURE, AMBIGUOUS, NONE = "sure", "ambiguous", "none"
# why, as the file and the reply word it (templates/match/labels.toml)
UNIT_AND_NAME = "unit_and_name"  # the 群昵称 names the person's unit and their name
NAME_ONLY = "name_only"  # the 群昵称 is only a name, one expected person's
DISPLAY_NAME = "display_name"  # the WeChat name is one expected person's name
SAME_NAME = "same_name"  # several expected persons carry the name
CONTESTED = "contested"  # several members point at the same person
OTHER_WECHAT = "other_wechat"  # the person has another WeChat already: maybe not them
WRONG_UNIT = "wrong_unit"  # the name is expected, but the unit written is not theirs
NOT_FOUND = "not_found"  # nobody expected carries the name
NO_NAME = "no_name"  # neither 群昵称 nor WeChat name reads as a name
SHOWN = 64  # characters of a 群昵称 or WeChat name kept and shown
CHUNK = 500  # ids per IN (...) list
MAX_SELECTED = 1000  # numbers one #确认匹配 may name (a group holds 500)
# what people put between 单位 and 姓名: dashes of every width, underscores, dots, bars, spaces
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−－_＿·•・/／|｜\\,，、.。:：()（）\[\]【】]+")


def plain(text: str) -> str:
    """``text`` as names are compared: NFKC (full-width to half-width), no spaces, casefolded.

    >>> plain(" 张　三 "), plain("ＡＢ")
    ('张三', 'ab')
    """
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold()


def parts(text: str) -> list[str]:
    """The pieces of a 群昵称 between separators, normalised.

    >>> parts("乙1县第3小学 — 张三"), parts("第3小学_张三"), parts("张三")
    (['乙1县第3小学', '张三'], ['第3小学', '张三'], ['张三'])
    """
    folded = unicodedata.normalize("NFKC", text[: SHOWN * 2])
    return [p.casefold() for p in _SEPARATORS.split(folded) if p]


@dataclass(frozen=True, slots=True)
class Candidate:
    """An expected person as a member may be matched to them."""

    person_id: int
    name: str
    unit_code: str  # the unit the person is expected here for (shown)
    unit_name: str
    office_units: tuple[str, ...] = ()  # where the person holds office: never bound in bulk

    @property
    def office(self) -> bool:
        return bool(self.office_units)


@dataclass(frozen=True, slots=True)
class MemberMatch:
    """What ``suggest`` made of one unbound member."""

    contact_id: str
    nickname: str
    name: str
    confidence: str
    reason: str
    candidates: tuple[Candidate, ...] = ()
    fits_pattern: bool = False  # the 群昵称 already follows the blueprint's pattern


@dataclass
class Expected:
    """The persons the rules put in one group, indexed by normalised name, with the names of
    their units as a 群昵称 may write them."""

    persons: dict[int, Candidate]
    by_name: dict[str, list[int]]
    unit_names: dict[int, set[str]]  # person → their units' full names, normalised
    unit_short: dict[int, set[str]]  # … and those named exactly only: without the parent, code

    def unit_fits(self, person_id: int, written: str) -> bool:
        """Whether the unit part of a 群昵称 names one of the person's units: a full name, a
        tail of one (第3小学 or 县第3小学 for 乙1县第3小学), one after more words (甲市乙1县第3小学),
        a short form exactly. Never a short form at the end of more: 乙2县第1小学 ends with
        乙1县第1小学's 第1小学, and is another county's school."""
        if written in self.unit_short.get(person_id, ()):
            return True
        for full in self.unit_names.get(person_id, ()):
            if written.endswith(full) or (len(written) >= 3 and full.endswith(written)):
                return True
        return False


def expected_for(conn: Connection, bp: Blueprint, group_id: int) -> Expected:
    """The index of the persons the rules put in the group ``group_id`` (any shard)."""
    row = conn.execute(
        select(GROUP.c.unit_code, GROUP.c.kind).where(GROUP.c.id == group_id)
    ).first()
    if row is None or row.kind not in bp.group_keys():
        raise MatrixError("找不到本群的群类型", fix="请先认领本群（#认领）")
    view, ids = expected_view(conn, bp, row.unit_code, row.kind)
    roles = office_roles(bp)
    places: dict[int, list[tuple[str, str, str | None]]] = {}
    names: dict[int, str] = {}
    offices: dict[int, list[str]] = {}
    ordered = sorted(ids)
    for i in range(0, len(ordered), CHUNK):
        query = (
            select(
                PERSON.c.id,
                PERSON.c.name,
                POSITION.c.unit_code,
                POSITION.c.role,
                UNIT.c.name,
                UNIT.c.level,
                UNIT.c.parent_code,
            )
            .select_from(PERSON.join(POSITION, POSITION.c.person_id == PERSON.c.id).join(UNIT))
            .where(
                PERSON.c.id.in_(ordered[i : i + CHUNK]),
                PERSON.c.removed_at.is_(None),
                UNIT.c.removed_at.is_(None),
            )
            .order_by(PERSON.c.id, UNIT.c.depth.desc(), POSITION.c.unit_code)
        )
        for pid, pname, code, role, uname, level, parent in raw_rows(conn, query):
            names[pid] = pname
            places.setdefault(pid, []).append((code, uname, parent))
            if role in roles.get(level, frozenset()) and code not in offices.get(pid, []):
                offices.setdefault(pid, []).append(code)
    out = Expected({}, {}, {}, {})
    for pid, where in places.items():
        code, uname, _ = where[0]  # the deepest unit: the school, not the county it is in
        out.persons[pid] = Candidate(pid, names[pid], code, uname, tuple(offices.get(pid, ())))
        out.by_name.setdefault(plain(names[pid]), []).append(pid)
        full_names: set[str] = set()
        short: set[str] = set()
        for code, uname, parent in where:
            full = plain(uname)
            full_names.add(full)
            short.add(code.casefold())
            if parent is not None and parent in view.units:
                up = plain(view.name(parent))
                if full.startswith(up) and len(full) > len(up):
                    short.add(full[len(up) :])
        out.unit_names[pid] = full_names
        out.unit_short[pid] = short
    return out


def _read_name(expected: Expected, text: str) -> tuple[list[int], str] | None:
    """(the expected persons whose name ``text`` shows, the unit written beside it), or None
    when no expected name is in it. 单位-姓名 first, then 姓名-单位, the whole as a name (张 三),
    then a name run together after the unit (第3小学张三)."""
    pieces = parts(text)
    if not pieces:
        return None
    whole = "".join(pieces)
    tries = [(pieces[-1], pieces[:-1]), (pieces[0], pieces[1:]), (whole, [])]
    for name, rest in tries:
        found = expected.by_name.get(name)
        if found:
            return found, "".join(rest)
    for size in (4, 3, 2):
        if len(whole) > size and (found := expected.by_name.get(whole[-size:])):
            return found, whole[:-size]
    return None


def _judge(
    expected: Expected, member: Member, present: Collection[int]
) -> tuple[str, str, tuple[int, ...]]:
    """(confidence, reason, candidate persons) for one member."""
    read, reason = _read_name(expected, member.nickname), None
    if read is None:
        read, reason = _read_name(expected, member.name), DISPLAY_NAME
        if read is None:
            # a 群昵称 naming nobody expected is a stranger's; no 群昵称 at all (a WeChat name
            # like 阳光 tells nothing) is someone to ask for one
            return NONE, NOT_FOUND if parts(member.nickname) else NO_NAME, ()
    found, unit = read
    people = [p for p in found if p not in present]  # already in the group under a contact
    if not people:
        return NONE, NOT_FOUND, ()
    if unit:
        fitting = [p for p in people if expected.unit_fits(p, unit)]
        if not fitting:
            return NONE, WRONG_UNIT, ()
        people = fitting
    if len(people) > 1:
        return AMBIGUOUS, SAME_NAME, tuple(people)
    if reason is None:
        reason = UNIT_AND_NAME if unit else NAME_ONLY
    return SURE, reason, (people[0],)


def suggest(
    conn: Connection,
    bp: Blueprint,
    group_id: int,
    names: Mapping[str, str] | None = None,
    *,
    expected: Expected | None = None,
) -> list[MemberMatch]:
    """A suggestion for every member of the group bound to no roster person, as the room was
    last read (``actual.sync_members``); ``names``: contact → WeChat name, from that read."""
    expected = expected or expected_for(conn, bp, group_id)
    names = names or {}
    pattern = re.compile(bp.matrix.nickname_pattern)
    present: set[int] = set()
    members: list[Member] = []
    for cid, pid, nick in conn.execute(
        select(MEMBERSHIP.c.contact_id, MEMBERSHIP.c.person_id, MEMBERSHIP.c.nickname)
        .where(
            MEMBERSHIP.c.group_id == group_id,
            MEMBERSHIP.c.state == "actual",
            MEMBERSHIP.c.contact_id.is_not(None),
        )
        .order_by(MEMBERSHIP.c.id)
    ):
        if pid is not None:
            present.add(int(pid))
        else:
            members.append(Member(cid, names.get(cid, "")[:SHOWN], (nick or "")[:SHOWN]))
    judged = [(m, *_judge(expected, m, present)) for m in members]
    claimed: dict[int, int] = {}
    for _, confidence, _, people in judged:
        if confidence == SURE:
            claimed[people[0]] = claimed.get(people[0], 0) + 1
    # a person who has a WeChat already (bound, or the roster's 微信号): anyone may put their
    # name in a 群昵称, and binding would take the person's authority from that WeChat
    reached = contacts_of(conn, claimed)
    out = []
    for m, confidence, reason, people in judged:
        if confidence == SURE and claimed[people[0]] > 1:
            confidence, reason = AMBIGUOUS, CONTESTED  # two members, one person: guess neither
        elif confidence == SURE and people[0] in reached:
            confidence, reason = AMBIGUOUS, OTHER_WECHAT
        out.append(
            MemberMatch(
                m.contact_id,
                m.nickname,
                m.name,
                confidence,
                reason,
                tuple(expected.persons[p] for p in people),
                bool(pattern.match(m.nickname)),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One stored row: a numbered (confirmable) person for a member, or a member nobody was
    found for (``number`` None)."""

    number: int | None
    contact_id: str
    nickname: str
    name: str
    confidence: str
    reason: str
    person: Candidate | None
    confirmed: bool = False


@dataclass
class Shown:
    """What ``#匹配`` showed for one group, counted as the reply says it."""

    rows: list[Suggestion]

    @property
    def sure(self) -> list[Suggestion]:
        return [r for r in self.rows if r.confidence == SURE]

    @property
    def bulk(self) -> list[Suggestion]:
        """The ones ``全部`` or a range confirm: sure, and no office authority."""
        return [r for r in self.sure if r.person is not None and not r.person.office]

    @property
    def office(self) -> list[Suggestion]:
        """Sure ones for a person with office authority: each confirmed on its own."""
        return [r for r in self.sure if r.person is not None and r.person.office]

    @property
    def ambiguous_members(self) -> int:
        return len({r.contact_id for r in self.rows if r.confidence == AMBIGUOUS})

    @property
    def unmatched(self) -> list[Suggestion]:
        return [r for r in self.rows if r.confidence == NONE]


def _order(match: MemberMatch) -> tuple[int, bool, str, str]:
    person = match.candidates[0] if match.candidates else None
    rank = {SURE: 0, AMBIGUOUS: 1, NONE: 2}[match.confidence]
    office = person is not None and person.office
    return rank, office, person.unit_code if person else "", person.name if person else ""


def store(
    conn: Connection,
    group_id: int,
    matches: Iterable[MemberMatch],
    *,
    actor: str,
    now: datetime,
    hours: float,
) -> Shown:
    """Number and keep the suggestions for the group, replacing what was shown before: the
    sure ones first (those with office authority last among them), then one number per
    candidate of an ambiguous member; members nobody was found for are kept unnumbered.
    Lapsed suggestions of every group go on the way."""
    # what this group was shown before, and what any group was shown and let lapse
    conn.execute(
        delete(MATCH_SUGGESTION).where(
            or_(MATCH_SUGGESTION.c.group_id == group_id, MATCH_SUGGESTION.c.expires_at <= now)
        )
    )
    rows: list[dict[str, object]] = []
    shown: list[Suggestion] = []
    number = 0
    for m in sorted(matches, key=_order):
        for person in m.candidates or (None,):
            numbered = person is not None
            number += numbered
            shown.append(
                Suggestion(
                    number if numbered else None,
                    m.contact_id,
                    m.nickname,
                    m.name,
                    m.confidence,
                    m.reason,
                    person,
                )
            )
            rows.append(
                {
                    "group_id": group_id,
                    "number": number if numbered else None,
                    "contact_id": m.contact_id,
                    "nickname": m.nickname[:SHOWN],
                    "name": m.name[:SHOWN],
                    "person_id": person.person_id if person else None,
                    "confidence": m.confidence,
                    "reason": m.reason,
                    "office": bool(person and person.office),
                    "made_by": actor,
                    "created_at": now,
                    "expires_at": now + timedelta(hours=hours),
                }
            )
    for i in range(0, len(rows), 5000):
        conn.execute(insert(MATCH_SUGGESTION), rows[i : i + 5000])
    return Shown(shown)


def shown(conn: Connection, bp: Blueprint, group_id: int, now: datetime) -> Shown:
    """What the group's last ``#匹配`` showed, unless it has lapsed."""
    found = conn.execute(
        select(MATCH_SUGGESTION)
        .where(MATCH_SUGGESTION.c.group_id == group_id, MATCH_SUGGESTION.c.expires_at > now)
        .order_by(MATCH_SUGGESTION.c.number.is_(None), MATCH_SUGGESTION.c.number)
    ).all()
    if not found:
        return Shown([])
    expected = expected_for(conn, bp, group_id)
    rows = []
    for r in found:
        person = None
        if r.person_id is not None:
            person = expected.persons.get(int(r.person_id))
            if person is None:  # no longer expected here since it was shown
                continue
        rows.append(
            Suggestion(
                r.number,
                r.contact_id,
                r.nickname,
                r.name,
                r.confidence,
                r.reason,
                person,
                r.confirmed_at is not None,
            )
        )
    return Shown(rows)


@dataclass
class Confirmed:
    """What ``#确认匹配`` did."""

    bound: list[Suggestion] = field(default_factory=list)
    office_held: list[Suggestion] = field(default_factory=list)  # need their own #确认匹配 N
    ambiguous_held: list[Suggestion] = field(default_factory=list)  # need their own too
    refused_office: list[Suggestion] = field(default_factory=list)  # outside the asker's offices
    unknown: list[int] = field(default_factory=list)  # numbers that name no open suggestion
    skipped: list[Suggestion] = field(default_factory=list)  # bound meanwhile, or confirmed
    held: list[JoinDecision] = field(default_factory=list)  # strangers put to join review
    # (contact, name to show) of those to ask for the 群昵称 pattern: just bound with a 群昵称
    # off it, or still unbound showing no name at all (nobody could tell who they are)
    fix_nickname: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[tuple[str, int]] = field(default_factory=list)  # operator picks refused


ALL = None  # ``confirm``'s ``numbers`` for 全部


def confirm(
    engine: Engine,
    bp: Blueprint,
    group_id: int,
    numbers: Sequence[int] | None,
    *,
    actor: str,
    now: datetime,
    may_confirm_office: Callable[[Sequence[str]], bool],
    policy: TimeoutPolicy,
) -> Confirmed:
    """Bind the chosen suggestions (``numbers``, or ``ALL`` the sure ones) as office decisions.
    Only a number named alone confirms a person with office authority (and only when
    ``may_confirm_office`` of their office units) or one candidate of an ambiguous member.
    Afterwards the members nobody was found for are put to join review, and those to ask for
    their 群昵称 are listed (``fix_nickname``) for one message.

    The bindings are written ``STEP`` at a time, each batch in a transaction of its own: 500
    in one would hold SQLite's write lock for seconds, and every other group's command waits
    on it. A confirmation cut short by a crash is simply sent again (the bound are skipped)."""
    with engine.begin() as conn:
        current = shown(conn, bp, group_id, now)
        out, chosen = _choose(current, numbers, may_confirm_office)
    for i in range(0, len(chosen), STEP):
        if i:
            time.sleep(GAP)
        with engine.begin() as conn:
            _bind_all(conn, bp, group_id, chosen[i : i + STEP], out, actor=actor, now=now)
    with engine.begin() as conn:
        _after(conn, bp, group_id, current, out, actor=actor, now=now, policy=policy)
    return out


STEP = 25  # bindings per transaction of ``confirm``
# seconds between two of them: a writer that takes SQLite's lock again at once starves the
# others, whose busy handler sleeps and retries (a #帮助 claiming its message waited 1.6 s
# behind 500 bindings, then got in with every batch)
GAP = 0.03


def _choose(
    current: Shown,
    numbers: Sequence[int] | None,
    may_confirm_office: Callable[[Sequence[str]], bool],
) -> tuple[Confirmed, list[Suggestion]]:
    """Which shown suggestions ``numbers`` confirm, and why the others named are not."""
    if not current.rows:
        raise MatrixError("本群没有待确认的匹配建议（可能已过期）", fix="请先发送 #匹配 查看建议")
    numbered = {r.number: r for r in current.rows if r.number is not None}
    alone = numbers is not None and len(numbers) == 1
    out = Confirmed()
    if numbers is None:
        picked = current.bulk
        out.office_held = [r for r in current.office if not r.confirmed]
    else:
        picked = []
        for n in numbers:
            row = numbered.get(n)
            if row is None:
                out.unknown.append(n)
            else:
                picked.append(row)
    chosen: list[Suggestion] = []
    for row in picked:
        office = row.person is not None and row.person.office
        if row.confirmed:
            out.skipped.append(row)
        elif row.confidence == AMBIGUOUS and not alone:
            out.ambiguous_held.append(row)
        elif office and not alone:
            out.office_held.append(row)
        elif office and row.person and not may_confirm_office(row.person.office_units):
            out.refused_office.append(row)
        else:
            chosen.append(row)
    return out, chosen


def _after(
    conn: Connection,
    bp: Blueprint,
    group_id: int,
    current: Shown,
    out: Confirmed,
    *,
    actor: str,
    now: datetime,
    policy: TimeoutPolicy,
) -> None:
    """After binding: the strangers to join review; the unreadable first among those asked.
    Each unmatched member is dealt with once per #匹配 (their row marked), so a second
    #确认匹配 does not ask or announce them again."""
    current = Shown([r for r in current.rows if r.number is not None or not r.confirmed])
    out.held = _review_strangers(conn, bp, group_id, current, actor=actor, now=now, policy=policy)
    out.fix_nickname[:0] = _unreadable(conn, bp, current)  # first: nobody can tell who they are
    conn.execute(
        update(MATCH_SUGGESTION)
        .where(
            MATCH_SUGGESTION.c.group_id == group_id,
            MATCH_SUGGESTION.c.number.is_(None),
            MATCH_SUGGESTION.c.confirmed_at.is_(None),
        )
        .values(confirmed_at=now, confirmed_by=actor)
    )


def _bind_all(
    conn: Connection,
    bp: Blueprint,
    group_id: int,
    rows: Sequence[Suggestion],
    out: Confirmed,
    *,
    actor: str,
    now: datetime,
) -> None:
    """Bind chosen suggestions as office decisions (``#同意``'s path), unless the member was
    bound meanwhile (#绑定, #同意, another number of theirs) or the person already sits in the
    group under another contact (binding would take their authority from it). What is read
    for all of them is read once."""
    seated = {
        int(pid)
        for (pid,) in conn.execute(
            select(MEMBERSHIP.c.person_id).where(
                MEMBERSHIP.c.group_id == group_id,
                MEMBERSHIP.c.state == "actual",
                MEMBERSHIP.c.person_id.is_not(None),
            )
        )
    }
    held = set(
        conn.execute(
            select(JOIN_REQUEST.c.contact_id).where(
                JOIN_REQUEST.c.contact_id.in_([r.contact_id for r in rows]),
                JOIN_REQUEST.c.status == "held",
            )
        ).scalars()
    )
    done: list[int] = []
    for row in rows:
        assert row.person is not None
        person = row.person.person_id
        if person in seated or lookup(conn, row.contact_id) is not None:
            out.skipped.append(row)
            continue
        bind_by_admin(conn, row.contact_id, person, actor)
        seated.add(person)
        if row.contact_id in held:  # held at the door: let in where the rules put them
            admit_bound(conn, bp, row.contact_id, now=now, actor=actor)
        if row.number is not None:
            done.append(row.number)
        out.bound.append(row)
        if not re.match(bp.matrix.nickname_pattern, row.nickname):
            out.fix_nickname.append((row.contact_id, row.person.name))
    if done:
        conn.execute(
            update(MATCH_SUGGESTION)
            .where(MATCH_SUGGESTION.c.group_id == group_id, MATCH_SUGGESTION.c.number.in_(done))
            .values(confirmed_at=now, confirmed_by=actor)
        )


def _stranger(bp: Blueprint, row: Suggestion) -> bool:
    """Whether an unmatched member said who they are and is nobody expected here: their 群昵称
    follows the pattern and names a person the group does not expect, or a unit not theirs.
    Anyone else (阳光, 张子涵老师, no 群昵称) cannot be told from a roster person: asked to set
    their 群昵称, never held (a held joiner is removed when nobody decides in time)."""
    fits = re.match(bp.matrix.nickname_pattern, row.nickname) is not None
    return fits and row.reason in (NOT_FOUND, WRONG_UNIT)


def _unreadable(conn: Connection, bp: Blueprint, current: Shown) -> list[tuple[str, str]]:
    """Members still unbound whose 群昵称 tells nothing: asked to set it."""
    return [
        (r.contact_id, r.nickname or r.name or r.contact_id)
        for r in current.unmatched
        if not _stranger(bp, r) and lookup(conn, r.contact_id) is None
    ]


def _review_strangers(
    conn: Connection,
    bp: Blueprint,
    group_id: int,
    current: Shown,
    *,
    actor: str,
    now: datetime,
    policy: TimeoutPolicy,
) -> list[JoinDecision]:
    """Strangers (``_stranger``) still unbound: held by the join review as if they had just
    joined (a member held before keeps their request and is not announced again)."""
    strangers = [
        Member(r.contact_id, r.name, r.nickname)
        for r in current.unmatched
        if _stranger(bp, r) and lookup(conn, r.contact_id) is None
    ]
    if not strangers:
        return []
    decisions = review_joins(conn, bp, group_id, strangers, now=now, policy=policy, actor=actor)
    return [d for d in decisions if d.outcome == "hold"]


def bind_chosen(
    conn: Connection,
    bp: Blueprint,
    group_id: int,
    chosen: Sequence[tuple[str, int]],
    *,
    actor: str,
    now: datetime,
    policy: TimeoutPolicy,
) -> Confirmed:
    """The operator's picks (contact, person) from an edited suggestions file: each contact
    still unbound in the group is bound to the person written, who must be one the rules put
    in the group (``rejected`` otherwise: never a person of a unit outside it). Then, as
    ``confirm`` does, the members nobody was found for are put to join review."""
    expected = expected_for(conn, bp, group_id)
    seated = {
        cid: nick or ""
        for cid, nick in conn.execute(
            select(MEMBERSHIP.c.contact_id, MEMBERSHIP.c.nickname).where(
                MEMBERSHIP.c.group_id == group_id,
                MEMBERSHIP.c.state == "actual",
                MEMBERSHIP.c.person_id.is_(None),
            )
        )
    }
    out = Confirmed()
    rows = []
    for contact, person_id in chosen:
        person = expected.persons.get(person_id)
        if person is None or contact not in seated:
            out.rejected.append((contact, person_id))
            continue
        rows.append(
            Suggestion(None, contact, seated[contact][:SHOWN], "", SURE, "operator", person)
        )
    _bind_all(conn, bp, group_id, rows, out, actor=actor, now=now)
    _after(
        conn, bp, group_id, shown(conn, bp, group_id, now), out, actor=actor, now=now, policy=policy
    )
    return out


def groups_of(conn: Connection, unit_code: str) -> list[tuple[int, str]]:
    """(group id, name) of the groups ``unit_code`` leads that have a room (built or adopted),
    for the operator's ``qunmatrix match --unit``."""
    rows = conn.execute(
        select(GROUP.c.id, GROUP.c.name)
        .where(GROUP.c.unit_code == unit_code, GROUP.c.room_id.is_not(None))
        .order_by(GROUP.c.kind, GROUP.c.shard)
    )
    return [(int(gid), str(name)) for gid, name in rows]
