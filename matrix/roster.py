"""The roster: validating the units and persons files, and importing them in one transaction.

Everything is checked before anything is written; on any problem ``RosterError`` lists each one
with its file, row and column and the database is untouched. Re-importing is idempotent: the
report says what was added, changed and removed, and ``dry_run`` shows that report without
writing. Removed units and persons are only marked ``removed_at`` (see ``matrix.models``).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, islice
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Table, bindparam, select, update

from matrix.blueprint import Blueprint, RoleSpec
from matrix.bulk import no_gc
from matrix.db import raw_rows
from matrix.errors import MatrixError, Problem, RosterError
from matrix.limits import CappedProblems, InputLimits
from matrix.models import utcnow
from matrix.sheets import Column, Sheet, read_sheet
from matrix.tables import PERSON, POSITION, UNIT
from matrix.tree import tree_faults

UNIT_COLUMNS = (
    Column("code", ("code", "单位代码", "代码")),
    Column("name", ("name", "单位名称", "名称")),
    Column("level", ("level", "层级", "级别")),
    Column("parent_code", ("parent_code", "上级代码", "上级单位代码")),
)
PERSON_COLUMNS = (
    Column("unit_code", ("unit_code", "单位代码")),
    Column("name", ("name", "姓名")),
    Column("role", ("role", "岗位", "职务")),
    Column("phone", ("phone", "手机", "手机号", "电话"), required=False),
    Column("wechat_id", ("wechat_id", "微信号"), required=False),
)

_MOBILE = re.compile(r"^(?:\+?86)?(1[3-9]\d{9})$")
_PLAIN_MOBILE = re.compile(r"1[3-9][0-9]{9}")  # a mobile written as it is stored
_LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$")
_WECHAT_ID = re.compile(r"^[A-Za-z][-_A-Za-z0-9]{5,19}$|^wxid_[A-Za-z0-9_]{4,40}$")
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_PHONE_NOISE = re.compile(r"[\s()（）-]")
_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:[.,]\d*)?[eE][+]?\d+$")  # 1.38E+10, as Excel shows it


def clean_code(text: str) -> str:
    """Codes, phones and ids: full-width folded, every space dropped.

    >>> clean_code(" ２３０１ 02\u3000")
    '230102'
    """
    if text.isascii():
        if text.isalnum():
            return text  # the common case: nothing to fold, no space to drop
    else:
        text = unicodedata.normalize("NFKC", text)
    return "".join(text.split())


def clean_name(text: str) -> str:
    """Names keep single inner spaces; full-width spaces and stray whitespace go.

    >>> clean_name("\\u3000张　三  ")
    '张 三'
    """
    if text.isprintable() and " " not in text:
        return text  # the common case: every other whitespace character is unprintable
    cleaned = " ".join(text.replace("\u3000", " ").split())
    return text if cleaned == text else cleaned  # keep one string object per name


def clean_phone(text: str) -> str | None:
    """A mainland mobile (11 digits) or landline with area code, or None if invalid.

    >>> clean_phone("+86 138-0013-8000"), clean_phone("(0451)53603185"), clean_phone("12345")
    ('13800138000', '045153603185', None)
    """
    if text.isascii() and text.isdigit():
        digits = text  # nothing to fold or strip
    else:
        digits = _PHONE_NOISE.sub("", unicodedata.normalize("NFKC", text))
    if m := _MOBILE.match(digits):
        return m.group(1)
    return digits if _LANDLINE.match(digits) else None


def _bad_phone(text: str) -> str:
    if _SCIENTIFIC.match(text):
        return (
            f"手机号 {text!r} 是 Excel 把长数字显示成了科学计数法，后几位已经丢失；"
            "请在 Excel 中把「手机」列设为「文本」格式，重新输入这些号码，再保存后导入"
        )
    return f"手机号 {text!r} 无效，应为 11 位手机号或带区号的座机"


class UnitRecord(NamedTuple):
    # tuples, not frozen dataclasses: built 200,000 times, and a frozen dataclass's __init__
    # costs a microsecond per field
    code: str
    name: str
    level: str
    parent_code: str | None


class PersonRecord(NamedTuple):
    key: str
    name: str
    phone: str | None
    wechat_id: str | None
    # the person's number in the roster (1, 2 … in the order of first rows), and their id when
    # the roster goes into an empty database: the record is then the row to insert as it is
    ordinal: int = 0


# a NamedTuple's own __new__ is a Python call, a microsecond for each of 750,000 persons
_record = tuple.__new__


@dataclass
class Roster:
    """A validated roster, ready to import."""

    units: dict[str, UnitRecord]
    persons: dict[str, PersonRecord]
    positions: list[tuple[str, str, str, int]]  # person key, unit code, role, seq


def person_key(name: str, unit_code: str, phone: str | None, wechat_id: str | None) -> str:
    """How a person is recognised across imports: WeChat id, else phone and name, else unit and name."""
    if wechat_id:
        return f"wx:{wechat_id}"
    if phone:
        return f"tel:{phone}:{name}"
    return f"unit:{unit_code}:{name}"


def _cached(find: Callable[[str], Any]) -> Callable[[str], Any]:
    """``find`` remembered per text: a national roster writes the same few levels and roles
    750,000 times."""
    seen: dict[str, Any] = {}

    def lookup(text: str) -> Any:
        try:
            return seen[text]
        except KeyError:
            found = seen[text] = find(text)
            return found

    return lookup


def _validate_units(
    sheet: Sheet, bp: Blueprint, problems: list[Problem]
) -> tuple[dict[str, UnitRecord], set[str]]:
    """The valid units, and the codes of rows that were broken (so that their persons are not
    reported a second time as "unit not in the table")."""
    units, first_row, broken = _unit_rows(sheet, bp, problems)
    _check_tree(units, sheet, bp, first_row, problems)
    return units, broken - units.keys()


_UNIT_READ = ("code", "name", "level", "parent_code")


def _unit_rows(
    sheet: Sheet, bp: Blueprint, problems: list[Problem]
) -> tuple[dict[str, UnitRecord], dict[str, int], set[str]]:
    """Each row checked on its own: the valid units, the row each came from, and the codes of
    the broken rows."""
    units: dict[str, UnitRecord] = {}
    broken: set[str] = set()
    first_row: dict[str, int] = {}
    find_level = _cached(bp.find_level)
    for row, (code_text, name_text, level_text, parent_text) in sheet.rows(_UNIT_READ):
        code, name = clean_code(code_text), clean_name(name_text)
        parent = clean_code(parent_text) or None
        ok = True
        if not code:
            problems.append(Problem(sheet.where(row, "code"), "单位代码为空"))
            ok = False
        elif not _CODE.match(code):
            problems.append(
                Problem(sheet.where(row, "code"), f"单位代码 {code!r} 只能含字母、数字和 _ . -")
            )
            ok = False
        elif code in first_row:
            problems.append(
                Problem(
                    sheet.where(row, "code"), f"单位代码 {code} 重复（第 {first_row[code]} 行已有）"
                )
            )
            ok = False
        if not name:
            problems.append(Problem(sheet.where(row, "name"), "单位名称为空"))
            ok = False
        level = find_level(level_text)
        if level is None:
            problems.append(
                Problem(
                    sheet.where(row, "level"),
                    f"层级 {level_text!r} 无法识别，可用：{bp.level_names()}",
                )
            )
            ok = False
        if parent == code and code:
            problems.append(Problem(sheet.where(row, "parent_code"), "上级代码不能是自己"))
            ok = False
        if ok and level is not None:
            first_row[code] = row
            units[code] = _record(UnitRecord, (code, name, level.key, parent))
        elif code:
            broken.add(code)
    return units, first_row, broken


def _check_tree(
    units: dict[str, UnitRecord],
    sheet: Sheet,
    bp: Blueprint,
    first_row: dict[str, int],
    problems: list[Problem],
) -> None:
    """The units as one tree (``tree_faults``, which the tree load uses too), each level under
    the one the blueprint puts above it."""
    faults = tree_faults({code: unit.parent_code for code, unit in units.items()})
    for code in faults.orphans:
        problems.append(
            Problem(
                sheet.where(first_row[code], "parent_code"),
                f"上级代码 {units[code].parent_code} 不在单位表中",
            )
        )
    depth = {level.key: i for i, level in enumerate(bp.levels)}
    for code, unit in units.items():
        above = units.get(unit.parent_code) if unit.parent_code is not None else None
        if above is None:
            continue  # the top, or an orphan (above)
        want = depth[unit.level] - 1
        if depth[above.level] != want:
            where = sheet.where(first_row[code], "parent_code")
            problems.append(Problem(where, _level_order(bp, unit, above, want)))
    roots = faults.roots
    if units and len(roots) > 1:
        for code in roots[1:]:
            problems.append(
                Problem(
                    sheet.where(first_row[code], "parent_code"),
                    f"上级代码为空，但 {roots[0]} 已是顶层单位；名册只能有一个顶层单位",
                )
            )
    for loop in faults.cycles:
        chain = " → ".join([*loop, loop[0]])
        problems.append(
            Problem(sheet.where(first_row[loop[0]], "parent_code"), f"上级关系成环：{chain}")
        )


def _level_order(bp: Blueprint, unit: UnitRecord, above: UnitRecord, want: int) -> str:
    """The level-order problem of one row: which unit, what its parent is, and what to fix."""
    this = f"{unit.name}（{unit.code}）是{bp.level(unit.level).label}级"
    parent = f"{above.name}（{above.code}）是{bp.level(above.level).label}级"
    if want < 0:
        return (
            f"层级顺序不对：{this}，是最高层级，不应有上级，但上级代码指向 {parent}；"
            "请清空本行的「上级代码」，或改正本行的「层级」"
        )
    need = bp.levels[want].label
    return (
        f"层级顺序不对：{this}，上级应为{need}级单位，但上级代码指向 {parent}；"
        f"请把本行的「上级代码」改为它所属{need}级单位的代码，或改正本行的「层级」"
    )


def _batches(rows: Iterator[Any], size: int = 2000) -> Iterator[list[Any]]:
    while batch := list(islice(rows, size)):
        yield batch


# a column of cells joined by line breaks: every one empty or valid as it is written
_MOBILES = re.compile(r"(?:(?:1[3-9][0-9]{9})?\n)*")
_WECHAT_IDS = re.compile(r"(?:(?:[A-Za-z][-_A-Za-z0-9]{5,19}|wxid_[A-Za-z0-9_]{4,40})?\n)*")


def _plain_mobiles(cells: Sequence[str]) -> bool:
    """Whether every cell is empty or a mobile as ``_PLAIN_MOBILE`` takes it, in one match."""
    return _column_is(_MOBILES, cells)


def _plain_wechat_ids(cells: Sequence[str]) -> bool:
    """Whether every cell is empty or a WeChat id as ``_WECHAT_ID`` takes it, in one match."""
    return _column_is(_WECHAT_IDS, cells)


def _column_is(form: re.Pattern[str], cells: Sequence[str]) -> bool:
    joined = "\n".join(cells) + "\n"
    # a line break inside a cell would make two cells of it
    return joined.count("\n") == len(cells) and form.fullmatch(joined) is not None


def _as_written(
    batch: list[tuple[int, tuple[str, ...]]],
    units: dict[str, UnitRecord],
    find_role: Callable[[str], RoleSpec | None],
) -> dict[str, RoleSpec] | None:
    """The roles of a batch of person rows by their text, if every row of it is valid exactly
    as it is written (as nearly all rows of a real roster are), so that nothing needs cleaning:
    told column by column at C speed, instead of a cell at a time (a quarter of the import).
    None if any row is not: the batch is then cleaned and checked row by row."""
    unit_texts, names, role_texts, phones, wechat_ids = zip(
        *(texts for _, texts in batch), strict=True
    )
    if not units.keys() >= set(unit_texts) or not all(names):
        return None
    joined = "".join(names)
    if " " in joined or not joined.isprintable():  # what clean_name would change
        return None
    if not (_plain_mobiles(phones) and _plain_wechat_ids(wechat_ids)):
        return None
    roles = {}
    for text in set(role_texts):
        if (role := find_role(text)) is None:
            return None
        roles[text] = role
    for unit_text, role_text in set(zip(unit_texts, role_texts, strict=True)):
        role = roles[role_text]
        if role.levels and units[unit_text].level not in role.levels:
            return None
    return roles


def _cleaned_person(
    texts: tuple[str, ...],
    units: dict[str, UnitRecord],
    find_role: Callable[[str], RoleSpec | None],
) -> tuple[UnitRecord, str, RoleSpec, str | None, str | None] | None:
    """One person row (its texts as in ``_PERSON_READ``) cleaned: (unit, name, role, phone,
    WeChat id), or None if anything in it is wrong (``_person_problems`` then says what). Each
    cell is tried first as it is written, which is how nearly all are: a unit code, mobile or
    WeChat id valid unchanged is its own cleaned form."""
    unit_text, name_text, role_text, raw_phone, raw_wechat = texts
    unit = units.get(unit_text) or units.get(clean_code(unit_text))
    name = clean_name(name_text)
    role = find_role(role_text)
    if _PLAIN_MOBILE.fullmatch(raw_phone):
        phone: str | None = raw_phone
    else:
        raw_phone = raw_phone.strip()
        phone = clean_phone(raw_phone) if raw_phone else None
    if _WECHAT_ID.fullmatch(raw_wechat):
        wechat_id: str | None = raw_wechat
    else:
        wechat_id = clean_code(raw_wechat) or None
    if (
        unit is None
        or not name
        or role is None
        or (role.levels and unit.level not in role.levels)
        or (raw_phone and phone is None)
        or (wechat_id and not _WECHAT_ID.match(wechat_id))
    ):
        return None
    return unit, name, role, phone, wechat_id


def _validate_persons(
    sheet: Sheet,
    bp: Blueprint,
    units: dict[str, UnitRecord],
    broken_units: set[str],
    problems: list[Problem],
) -> tuple[dict[str, PersonRecord], list[tuple[str, str, str, int]]]:
    """The valid persons by key, and their positions numbered within each unit and role.

    One loop for 750,000 rows: each row is cleaned and told valid with the fewest steps (the
    unit code kept is the units table's own string), then checked against the rows of the same
    person read before; a broken row is looked at again by ``_person_problems``."""
    persons: dict[str, PersonRecord] = {}
    posts = _Posts(bp)
    numbered, rows, first, counts = posts.numbered, posts.rows, posts.first, posts.counts
    intern = sys.intern  # names repeat: 315,000 distinct among 746,000 persons
    find_role = _cached(bp.find_role)
    for batch in _batches(sheet.rows(_PERSON_READ)):
        roles = _as_written(batch, units, find_role)
        for row, texts in batch:
            if roles is not None:  # the whole batch is valid as it is written
                unit_text, name, role_text, phone_text, wechat_text = texts
                unit, role = units[unit_text], roles[role_text]
                phone, wechat_id = phone_text or None, wechat_text or None
            elif (cleaned := _cleaned_person(texts, units, find_role)) is not None:
                unit, name, role, phone, wechat_id = cleaned
            else:
                _person_problems(sheet, bp, units, row, texts, problems)
                continue
            unit_code, name = unit.code, intern(name)
            if wechat_id:
                key = f"wx:{wechat_id}"
            else:
                key = f"tel:{phone}:{name}" if phone else f"unit:{unit_code}:{name}"
            known = persons.get(key)
            if known is None:  # a person's first row: nothing to compare with, no post twice
                persons[key] = _record(PersonRecord, (key, name, phone, wechat_id, len(first)))
                first.append(len(numbered))
                in_role = counts[role.key]
                seq = in_role[unit_code] = in_role.get(unit_code, 0) + 1
                numbered.append((key, unit_code, role.key, seq))
                rows.append(row)
            elif problem := _repeated(sheet, row, known, name, phone, posts):
                problems.append(problem)
            else:
                persons[key] = known._replace(phone=phone or known.phone, wechat_id=wechat_id)
                if (
                    earlier := posts.again(known.ordinal, key, unit_code, role.key, row)
                ) is not None:
                    problems.append(
                        Problem(
                            sheet.where(row),
                            f"与第 {earlier} 行重复：{name} 在该单位已任 {role.label}",
                        )
                    )
    return persons, numbered


def _repeated(
    sheet: Sheet, row: int, known: PersonRecord, name: str, phone: str | None, posts: _Posts
) -> Problem | None:
    """What is wrong with a further row of a known person, if anything: a WeChat id that
    another name uses, or another phone. (The persons by key tell both: a WeChat id's key is
    the id itself.)"""
    if known.key.startswith("wx:") and known.name != name:
        return Problem(
            sheet.where(row, "wechat_id"),
            f"微信号 {known.wechat_id} 重复：第 {posts.row_of(known.ordinal)} 行的 {known.name} 已使用",
        )
    if known.phone and phone and known.phone != phone:
        return Problem(sheet.where(row, "phone"), f"{name} 的手机号与前面行（{known.phone}）不一致")
    return None


class _Posts:
    """The positions read so far, numbered within their unit and role as they come (1, 2 … in
    the order of the file), with what it takes to tell a post given twice: the row of each and
    which are whose, in arrays rather than a dict of 750,000 (person, unit, role) keys."""

    def __init__(self, bp: Blueprint) -> None:
        self.numbered: list[tuple[str, str, str, int]] = []  # person key, unit, role, seq
        self.rows = array("l")  # the row each came from
        self.first = array("l", [-1])  # by person ordinal (from 1): the index of their first post
        self.more: dict[int, list[int]] = {}  # ordinal → their other posts, if any
        self.counts: dict[str, dict[str, int]] = {r.key: {} for r in bp.roles}  # role → unit → n

    def row_of(self, ordinal: int) -> int:
        """The row a person was first given on."""
        return self.rows[self.first[ordinal]]

    def again(self, ordinal: int, key: str, unit_code: str, role: str, row: int) -> int | None:
        """A further post of a known person; or, if they hold it already, the row it came from."""
        for i in (self.first[ordinal], *self.more.get(ordinal, ())):
            post = self.numbered[i]
            if post[1] == unit_code and post[2] == role:
                return self.rows[i]
        self.more.setdefault(ordinal, []).append(len(self.numbered))
        counts = self.counts[role]
        seq = counts[unit_code] = counts.get(unit_code, 0) + 1
        self.numbered.append((key, unit_code, role, seq))
        self.rows.append(row)
        return None


_PERSON_READ = ("unit_code", "name", "role", "phone", "wechat_id")


def _person_problems(
    sheet: Sheet,
    bp: Blueprint,
    units: dict[str, UnitRecord],
    row: int,
    texts: tuple[str, ...],
    problems: list[Problem],
) -> None:
    """Every problem of one person row (its texts as in ``_PERSON_READ``), in column order."""
    unit_code, name = clean_code(texts[0]), clean_name(texts[1])
    unit = units.get(unit_code)
    if not unit_code:
        problems.append(Problem(sheet.where(row, "unit_code"), "单位代码为空"))
    elif unit is None:
        problems.append(
            Problem(sheet.where(row, "unit_code"), f"单位代码 {unit_code} 不在单位表中")
        )
    if not name:
        problems.append(Problem(sheet.where(row, "name"), "姓名为空"))
    role = bp.find_role(texts[2])
    if role is None:
        problems.append(
            Problem(
                sheet.where(row, "role"),
                f"岗位 {texts[2]!r} 不在蓝图中，可用：{bp.role_names()}",
            )
        )
    elif unit is not None and role.levels and unit.level not in role.levels:
        allowed = "、".join(bp.level(lvl).label for lvl in role.levels)
        problems.append(
            Problem(
                sheet.where(row, "role"),
                f"岗位 {role.label} 只设在{allowed}级单位，{unit.name} 是{bp.level(unit.level).label}级",
            )
        )
    if (raw_phone := texts[3].strip()) and clean_phone(raw_phone) is None:
        problems.append(Problem(sheet.where(row, "phone"), _bad_phone(raw_phone)))
    wechat_id = clean_code(texts[4])
    if wechat_id and not _WECHAT_ID.match(wechat_id):
        problems.append(
            Problem(
                sheet.where(row, "wechat_id"),
                f"微信号 {wechat_id!r} 格式不对（6–20 位，字母开头，只含字母、数字、_ 和 -）",
            )
        )


def read_roster(
    units_path: str | Path,
    persons_path: str | Path,
    bp: Blueprint,
    limits: InputLimits | None = None,
) -> Roster:
    """Read and validate both files; raise ``RosterError`` with every problem found (the
    first ``MAX_PROBLEMS`` of them), or naming the first of ``limits`` a file exceeds."""
    problems: list[Problem] = CappedProblems(RosterError)
    unit_sheet = read_sheet(units_path, UNIT_COLUMNS, limits)
    person_sheet = read_sheet(persons_path, PERSON_COLUMNS, limits)
    with no_gc():
        units, broken_units = _validate_units(unit_sheet, bp, problems)
        if not units and not problems:
            problems.append(Problem(unit_sheet.path.name, "单位表没有数据行"))
        persons, positions = _validate_persons(person_sheet, bp, units, broken_units, problems)
    if problems:
        raise RosterError(problems)
    return Roster(units, persons, positions)


EXAMPLES = 10  # labels kept per kind of change; a national import adds 750,000 of each


@dataclass
class Change:
    """How many were added, changed and removed, with the first few of each by name."""

    added: int = 0
    changed: int = 0
    removed: int = 0
    examples: dict[str, list[str]] = field(
        default_factory=lambda: {"added": [], "changed": [], "removed": []}
    )

    def note(self, kind: str, label: str | Callable[[], str]) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        shown = self.examples[kind]
        if len(shown) < EXAMPLES:
            shown.append(label() if callable(label) else label)

    @property
    def total(self) -> int:
        return self.added + self.changed + self.removed


@dataclass
class ImportReport:
    """What an import did (or, with ``dry_run``, would do)."""

    units: Change
    persons: Change
    positions: Change
    dry_run: bool

    @property
    def unchanged(self) -> bool:
        return not (self.units.total or self.persons.total or self.positions.total)


def _paths(units: dict[str, UnitRecord]) -> dict[str, str]:
    paths: dict[str, str] = {}

    def path_of(code: str) -> str:
        chain = []
        node: str | None = code
        while node is not None and node not in paths:
            chain.append(node)
            node = units[node].parent_code
        prefix = paths[node] if node is not None else "/"
        for n in reversed(chain):
            prefix = paths[n] = f"{prefix}{n}/"
        return paths[code]

    for code, unit in units.items():
        if (above := paths.get(unit.parent_code or "")) is not None:  # listed after its parent
            paths[code] = f"{above}{code}/"
        elif code not in paths:
            path_of(code)
    return paths


_UNIT_FIELDS = ("code", "name", "level", "depth", "parent_code", "path", "active")
_PERSON_FIELDS = ("id", "key", "name", "phone", "wechat_id", "active")


class MassRemoval(MatrixError):
    """An import that would remove more than half of the stored units or persons."""


def _check_removals(units: Change, persons: Change, stored: tuple[int, int]) -> None:
    """Refuse, before anything is written, an import that removes most of the roster: a
    persons file cut down to its header would otherwise remove everyone."""
    for change, count, what in ((units, stored[0], "单位"), (persons, stored[1], "人员")):
        if change.removed * 2 > count:
            raise MassRemoval(
                f"此次导入将删除现有 {count:,} 个{what}中的 {change.removed:,} 个（超过一半），"
                "未写入任何数据",
                fix="请核对名册文件是否完整；确需删除请加 --allow-mass-removal 重新导入",
            )


def import_roster(
    engine: Engine,
    roster: Roster,
    bp: Blueprint,
    *,
    dry_run: bool = False,
    allow_mass_removal: bool = False,
) -> ImportReport:
    """Make the database hold exactly ``roster``, in one transaction; report the difference.

    Removing more than half of the stored units or persons raises ``MassRemoval`` unless
    ``allow_mass_removal``.

    Rows are read, compared and written as plain tuples on the driver's own cursor, not ORM
    objects nor Core rows: the national roster is 200,000 units and 750,000 persons, and per
    row SQLAlchemy's parameter and result processing cost as much as SQLite's own work.
    """
    now = utcnow()
    with no_gc(), engine.begin() as conn:
        if _empty(conn):
            return _first_import(conn, roster, bp, dry_run=dry_run)
        old = _Stored.read(conn, roster)
        units, unit_inserts, unit_updates, unit_removals = _diff_units(roster, bp, old)
        persons, id_of, person_inserts, person_updates, person_removals = _diff_persons(roster, old)
        positions, pos_inserts, pos_updates, pos_deletes = _diff_positions(
            conn, roster, bp, old, id_of
        )
        report = ImportReport(units, persons, positions, dry_run)
        if not allow_mass_removal:
            _check_removals(units, persons, (old.active_units(), old.active_persons))
        if dry_run:
            return report

        if person_updates:
            # free unique WeChat ids first, so that two persons trading ids do not collide
            conn.execute(
                update(PERSON).where(PERSON.c.id == bindparam("b_id")).values(wechat_id=None),
                [{"b_id": r[0]} for r in person_updates],
            )
        if pos_deletes:
            conn.execute(
                POSITION.delete().where(POSITION.c.id == bindparam("b_id")),
                [{"b_id": i} for i in pos_deletes],
            )
        _insert(conn, UNIT, _UNIT_FIELDS, unit_inserts, removed_at=None)
        _update(conn, UNIT, "code", _UNIT_FIELDS, unit_updates, removed_at=None)
        _retire(conn, UNIT, "code", unit_removals, now)
        _insert(conn, PERSON, _PERSON_FIELDS, person_inserts, removed_at=None)
        _update(conn, PERSON, "id", _PERSON_FIELDS, person_updates, removed_at=None)
        _retire(conn, PERSON, "id", person_removals, now)
        _insert(conn, POSITION, ("person_id", "unit_code", "role", "seq"), pos_inserts)
        if pos_updates:
            conn.execute(
                update(POSITION)
                .where(POSITION.c.id == bindparam("b_id"))
                .values(seq=bindparam("seq")),
                [{"b_id": i, "seq": seq} for i, seq in pos_updates],
            )
    return report


def _empty(conn: Connection) -> bool:
    """Whether the database holds no roster at all, not even removed rows."""
    tables = ((UNIT, "code"), (PERSON, "id"), (POSITION, "id"))
    return all(conn.execute(select(t.c[c]).limit(1)).first() is None for t, c in tables)


def _first_import(
    conn: Connection, roster: Roster, bp: Blueprint, *, dry_run: bool
) -> ImportReport:
    """Into an empty database there is nothing to compare: every row is added, each person
    under their ordinal as id. The persons' records are their rows as they are, and the rest
    is made as it is written (on a national roster, the diff cost as much as the writing)."""
    units, inserts, _, _ = _diff_units(roster, bp, _Stored.nothing(roster))
    persons, positions = Change(), Change()
    people = roster.persons
    _tally(persons, "added", list(islice(people.values(), EXAMPLES)), lambda r: r.name)
    persons.added = len(people)
    unit_name = {c: u.name for c, u in roster.units.items()}
    role_label = {r.key: r.label for r in bp.roles}
    for key, unit_code, role, _ in roster.positions[:EXAMPLES]:
        positions.note("added", _post(people[key].name, unit_name[unit_code], role_label[role]))
    positions.added = len(roster.positions)
    report = ImportReport(units, persons, positions, dry_run)
    if dry_run:
        return report
    _insert(conn, UNIT, _UNIT_FIELDS, inserts, removed_at=None)
    _insert(conn, PERSON, ("key", "name", "phone", "wechat_id", "id"), people.values())
    _insert(
        conn,
        POSITION,
        ("person_id", "unit_code", "role", "seq"),
        ((people[key].ordinal, unit, role, seq) for key, unit, role, seq in roster.positions),
    )
    return report


def _in_step(rows: Any, expected: Sequence[tuple[Any, ...]]) -> tuple[int, list[Any]]:
    """How many of the stored ``rows`` (a cursor) are ``expected``'s first ones, compared a
    thousand at a time at C speed; and the rows of the first batch that differs, from the
    first row that does (the rest are still in the cursor). On an unchanged national
    re-import every row is the same, and comparing them one by one was a third of it."""
    done = 0
    while batch := rows.fetchmany(1000):
        rest = expected[done : done + len(batch)]
        if batch == rest:
            done += len(batch)
            continue
        pairs = enumerate(zip(batch, rest, strict=False))
        same = next((i for i, (row, wanted) in pairs if row != wanted), len(rest))
        return done + same, batch[same:]
    return done, []


@dataclass
class _Stored:
    """What the database holds. Persons whose key the roster still has are kept as their id
    (by roster ordinal) and whether their row differs, not as rows: on an unchanged national
    re-import that is nearly all 746,000 of them, and their rows would double the roster in
    memory. Only rows of keys the roster no longer has (moved to a new key, or gone) are kept
    whole. Positions are not held at all: ``_diff_positions`` reads them in step with the
    roster's."""

    units: dict[str, tuple[Any, ...]]  # (*fields, active) by code
    ids: array[int]  # by roster ordinal: the stored id of that person, 0 if none
    changed: set[str]  # roster keys whose stored row differs from the roster's
    others: dict[str, tuple[Any, ...]]  # (*fields, active) of keys not in the roster
    max_person_id: int = 0
    active_persons: int = 0
    before: dict[int, tuple[Any, ...]] = field(default_factory=dict)  # a few changed rows, by id

    @classmethod
    def nothing(cls, roster: Roster) -> _Stored:
        return cls({}, array("q", bytes(8 * (len(roster.persons) + 1))), set(), {})

    @classmethod
    def read(cls, conn: Connection, roster: Roster) -> _Stored:
        units = select(*(UNIT.c[f] for f in _UNIT_FIELDS[:-1]), UNIT.c.removed_at.is_(None))
        stored = cls.nothing(roster)
        stored.units = {r[0]: r for r in raw_rows(conn, units)}
        # the persons' columns in the order of a PersonRecord's, the id where its ordinal is
        person = (PERSON.c.key, PERSON.c.name, PERSON.c.phone, PERSON.c.wechat_id, PERSON.c.id)
        active = raw_rows(
            conn, select(*person).where(PERSON.c.removed_at.is_(None)).order_by(PERSON.c.id)
        )
        # as the first import wrote them: in the roster's order, under its ordinals as ids
        done, left = _in_step(active, list(roster.persons.values()))
        stored.ids[1 : done + 1] = array("q", range(1, done + 1))
        stored.max_person_id = stored.active_persons = done
        stored._one_by_one(roster, chain(left, active), True)
        stored._one_by_one(
            roster, raw_rows(conn, select(*person).where(PERSON.c.removed_at.isnot(None))), False
        )
        return stored

    def _one_by_one(self, roster: Roster, rows: Iterable[tuple[Any, ...]], active: bool) -> None:
        """Stored persons (key, name, phone, wechat_id, id) that are ``active`` or not, each
        looked up in the roster by key."""
        wanted, ids, changed, others = roster.persons, self.ids, self.changed, self.others
        max_id, count = self.max_person_id, self.active_persons  # locals: 746,000 rows
        for key, name, phone, wechat_id, pid in rows:
            r = (pid, key, name, phone, wechat_id, active)
            if pid > max_id:
                max_id = pid
            count += active
            person = wanted.get(key)
            if person is None:
                others[key] = r
                continue
            ids[person.ordinal] = pid
            if not active or (name, phone, wechat_id) != (
                person.name,
                person.phone,
                person.wechat_id,
            ):
                changed.add(person.key)  # the roster's own key string, not a copy
                if len(self.before) < EXAMPLES:  # what the report shows as "old → new"
                    self.before[pid] = r
        self.max_person_id, self.active_persons = max_id, count

    def active_units(self) -> int:
        return sum(1 for r in self.units.values() if r[-1])


@dataclass
class _NewRows:
    """Rows to insert, made again from the roster when written instead of held: 750,000 of
    them would add a hundred megabytes to the import's peak."""

    count: int
    first: list[tuple[Any, ...]]  # the first EXAMPLES, for the report
    make: Callable[[], Iterator[tuple[Any, ...]]]

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, part: slice) -> list[tuple[Any, ...]]:
        return self.first[part]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return self.make() if self.count else iter(())  # an unchanged re-import makes none


def _tally(change: Change, kind: str, rows: Any, label: Callable[[Any], str]) -> None:
    """Count ``rows`` as ``kind`` and label the first few (a call per row would cost seconds)."""
    setattr(change, kind, getattr(change, kind) + len(rows))
    shown = change.examples[kind]
    shown.extend(label(r) for r in rows[: max(0, EXAMPLES - len(shown))])


def _diff_units(
    roster: Roster, bp: Blueprint, old: _Stored
) -> tuple[Change, list[tuple[Any, ...]], list[tuple[Any, ...]], list[str]]:
    paths = _paths(roster.units)
    depth = {lvl.key: i for i, lvl in enumerate(bp.levels)}
    inserts, updates = [], []
    stored = old.units
    for code, rec in roster.units.items():
        row = (code, rec.name, rec.level, depth[rec.level], rec.parent_code, paths[code], True)
        before = stored.get(code)
        if before is None:
            inserts.append(row)
        elif before != row:
            updates.append(row)
    # parents before children, in the order of the file within a level (sorting only these:
    # on a re-import there are few or none)
    inserts.sort(key=itemgetter(3))
    updates.sort(key=itemgetter(3))
    removals = [code for code, r in stored.items() if code not in roster.units and r[-1]]
    units = Change()
    _tally(units, "added", inserts, lambda r: f"{r[1]}（{r[0]}）")
    _tally(units, "changed", updates, lambda r: _unit_change(bp, stored[r[0]], r))
    _tally(units, "removed", removals, lambda code: f"{stored[code][1]}（{code}）")
    return units, inserts, updates, removals


def _diff_persons(
    roster: Roster, old: _Stored
) -> tuple[Change, array[int], _NewRows, list[tuple[Any, ...]], list[int]]:
    """The persons' changes, and the id of each person by ordinal (``old.ids``, filled in)."""
    others = old.others
    index: list[dict[Any, tuple[Any, ...]]] = []  # built at the first person not found by key

    def moved(person: PersonRecord) -> tuple[Any, ...] | None:
        # the same person may come back under a new key (a WeChat id added later); a stored
        # row whose key the roster still has is that key's, so only the others can have moved
        if not index:
            index.append({r[4]: r for r in others.values() if r[4]})
            index.append({(r[2], r[3]): r for r in others.values() if r[3]})
        return index[0].get(person.wechat_id) or index[1].get((person.name, person.phone))

    first_new = next_id = old.max_person_id + 1
    id_of = old.ids
    claimed: set[int] = set()  # ids of moved rows taken (a row found by its key is its own)
    first: list[tuple[Any, ...]] = []
    updates = []
    for key, person in roster.persons.items():
        if pid := id_of[person.ordinal]:
            if key in old.changed:
                updates.append((pid, key, person.name, person.phone, person.wechat_id, True))
            continue
        prev = moved(person) if others else None
        if prev is not None and (prev[0] in claimed or prev[1] in roster.persons):
            prev = None
        if prev is None:
            id_of[person.ordinal] = next_id
            if len(first) < EXAMPLES:
                first.append((next_id, key, person.name, person.phone, person.wechat_id))
            next_id += 1
            continue
        row = (prev[0], key, person.name, person.phone, person.wechat_id, True)
        id_of[person.ordinal] = prev[0]
        claimed.add(prev[0])
        if prev != row:
            updates.append(row)
            if len(old.before) < 2 * EXAMPLES:
                old.before[prev[0]] = prev
    gone = [r for r in others.values() if r[0] not in claimed and r[-1]]

    def make() -> Iterator[tuple[Any, ...]]:
        for key, person in roster.persons.items():
            if (pid := id_of[person.ordinal]) >= first_new:  # new ones: from first_new on
                yield (pid, key, person.name, person.phone, person.wechat_id)

    inserts = _NewRows(next_id - first_new, first, make)
    persons = Change()
    _tally(persons, "added", inserts, lambda r: r[2])
    # the rows whose old values are known come first among the examples
    known = old.before
    shown = [r for r in updates if r[0] in known][:EXAMPLES] if known else []
    shown += [r for r in updates[: 2 * EXAMPLES] if r[0] not in known]
    persons.changed += len(updates)
    persons.examples["changed"] = [
        _person_change(known[r[0]], r) if r[0] in known else r[2] for r in shown[:EXAMPLES]
    ]
    _tally(persons, "removed", gone, lambda r: r[2])
    return persons, id_of, inserts, updates, [r[0] for r in gone]


def _match_positions(
    conn: Connection, roster: Roster, id_of: array[int]
) -> tuple[array[int], list[tuple[int, int]], dict[tuple[int, str, str], tuple[int, int]]]:
    """The roster's positions against the stored ones: (the indexes of the roster's that are
    new, (id, seq) of those renumbered, (id, seq) by (person, unit, role) of the stored ones
    left). The stored ones are read by id, the order an import writes them in, so an unchanged
    roster is compared in step, a batch and then a pair at a time, without a dict of 750,000
    keys; from the first pair that differs on, the stored ones left are looked up by (person,
    unit, role)."""
    persons, wanted = roster.persons, roster.positions
    # first by person key, a batch at a time (``_in_step``): the same person has the same key
    in_step = select(PERSON.c.key, POSITION.c.unit_code, POSITION.c.role, POSITION.c.seq)
    in_step = in_step.join(PERSON, PERSON.c.id == POSITION.c.person_id).order_by(POSITION.c.id)
    cursor = raw_rows(conn, in_step)
    done, differs = _in_step(cursor, wanted)
    cursor.close()  # read no further: the rest is read by id below
    query = select(
        POSITION.c.person_id, POSITION.c.unit_code, POSITION.c.role, POSITION.c.id, POSITION.c.seq
    ).order_by(POSITION.c.id)
    # nothing differs only when every stored position was the roster's: none is left to read
    rows = iter(raw_rows(conn, query.offset(done)) if differs else ())
    updates: list[tuple[int, int]] = []
    count, pending = len(wanted), None
    for r in rows:
        if done < count:
            key, unit_code, role, seq = wanted[done]
            if r[0] == id_of[persons[key].ordinal] and r[1] == unit_code and r[2] == role:
                if r[4] != seq:
                    updates.append((r[3], seq))
                done += 1
                continue
        pending = r
        break
    intern = sys.intern  # unit codes and roles repeat
    left = {}
    if pending is not None:
        left = {(r[0], intern(r[1]), intern(r[2])): (r[3], r[4]) for r in chain([pending], rows)}
    added = array("l")
    for i in range(done, count):
        key, unit_code, role, seq = wanted[i]
        found = left.pop((id_of[persons[key].ordinal], unit_code, role), None)
        if found is None:
            added.append(i)
        elif found[1] != seq:
            updates.append((found[0], seq))
    return added, updates, left


def _diff_positions(
    conn: Connection, roster: Roster, bp: Blueprint, old: _Stored, id_of: array[int]
) -> tuple[Change, _NewRows, list[tuple[int, int]], list[int]]:
    added, updates, left = _match_positions(conn, roster, id_of)
    persons, wanted = roster.persons, roster.positions

    def make() -> Iterator[tuple[Any, ...]]:
        for i in added:
            key, unit_code, role, seq = wanted[i]
            yield (id_of[persons[key].ordinal], unit_code, role, seq)

    first = list(islice(make(), EXAMPLES))
    added_keys = [wanted[i][0] for i in added[:EXAMPLES]]
    gone = list(left)
    count = len(added)
    inserts = _NewRows(count, first, make)
    unit_name = {c: u.name for c, u in roster.units.items()}
    role_label = {r.key: r.label for r in bp.roles}
    positions = Change()
    labels = iter(added_keys)
    _tally(
        positions,
        "added",
        inserts,
        lambda r: _post(roster.persons[next(labels)].name, unit_name[r[1]], role_label[r[2]]),
    )
    # a removed post is named by person, unit and role: its person and unit may be gone
    # from the roster too, so their names come from what is stored
    shown = gone[:EXAMPLES]
    ids = {i[0] for i in shown}
    person_name = {r[0]: r[2] for r in old.others.values() if r[0] in ids}
    if ids - person_name.keys():
        person_name.update(
            (pid, p.name) for p in roster.persons.values() if (pid := id_of[p.ordinal]) in ids
        )
    _tally(
        positions,
        "removed",
        gone,
        lambda i: _post(
            person_name.get(i[0], "?"),
            unit_name.get(i[1]) or (old.units[i[1]][1] if i[1] in old.units else i[1]),
            role_label.get(i[2], i[2]),
        ),
    )
    return positions, inserts, updates, [left[i][0] for i in gone]


def _post(person: str, unit: str, role: str) -> str:
    return f"{person}（{unit} {role}）"


def _was(before: Any, after: Any, label: str) -> str | None:
    if before == after:
        return None
    return f"{label} {before or '（空）'} → {after or '（空）'}"


def _unit_change(bp: Blueprint, before: tuple[Any, ...], after: tuple[Any, ...]) -> str:
    """``甲市（C1）：名称 甲市 → 甲市（新）``; rows as in ``_UNIT_FIELDS``."""
    level = {lvl.key: lvl.label for lvl in bp.levels}
    parts = [
        _was(before[1], after[1], "名称"),
        _was(level.get(before[2], before[2]), level.get(after[2], after[2]), "层级"),
        _was(before[4], after[4], "上级代码"),
        None if before[-1] else "重新列入名册",
    ]
    return f"{before[1]}（{after[0]}）：{'，'.join(p for p in parts if p) or '上级单位的位置有变'}"


def _person_change(before: tuple[Any, ...], after: tuple[Any, ...]) -> str:
    """``韩娟阳：手机 139… → 136…``; rows as in ``_PERSON_FIELDS``."""
    parts = [
        _was(before[2], after[2], "姓名"),
        _was(before[3], after[3], "手机"),
        _was(before[4], after[4], "微信号"),
        None if before[-1] else "重新列入名册",
    ]
    return f"{after[2]}：{'，'.join(p for p in parts if p) or '识别方式调整'}"


def _columns(fields: tuple[str, ...]) -> list[str]:
    return [f for f in fields if f != "active"]  # "active" stands for removed_at IS NULL


def _insert(
    conn: Connection,
    table: Table,
    fields: tuple[str, ...],
    rows: Iterable[tuple[Any, ...]],
    **extra: Any,
) -> None:
    """Insert ``rows`` (tuples in ``fields`` order) with the driver's own executemany: they are
    plain ints and strings, which need none of SQLAlchemy's per-row parameter processing."""
    names = _columns(fields)
    width = len(names)
    # a None extra is what the column holds anyway (NULL), so it need not travel per row
    added = {k: v for k, v in extra.items() if v is not None}
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    columns = ", ".join(quote(n) for n in [*names, *added])
    sql = (
        f"INSERT INTO {quote(table.name)} ({columns}) "
        f"VALUES ({', '.join([mark] * (width + len(added)))})"
    )
    tail = tuple(added.values())
    source = iter(rows)
    if conn.dialect.name == "postgresql":
        _copy(conn, f"COPY {quote(table.name)} ({columns}) FROM STDIN", source, width, tail)
        return
    while chunk := list(islice(source, 50_000)):  # one chunk at a time in memory
        if tail or len(chunk[0]) != width:
            chunk = [(*r[:width], *tail) for r in chunk]
        conn.exec_driver_sql(sql, chunk)


def _copy(
    conn: Connection, sql: str, rows: Iterator[tuple[Any, ...]], width: int, tail: tuple[Any, ...]
) -> None:
    """PostgreSQL: COPY, in the transaction of ``conn``; a third of the time of executemany."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(sql) as copy:
        for r in rows:
            copy.write_row((*r[:width], *tail) if tail or len(r) != width else r)


def _update(
    conn: Connection,
    table: Table,
    pk: str,
    fields: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    **extra: Any,
) -> None:
    if not rows:
        return
    names = _columns(fields)
    values: dict[str, Any] = {n: bindparam(n) for n in names if n != pk}
    values.update({k: bindparam(k) for k in extra})
    conn.execute(
        update(table).where(table.c[pk] == bindparam("b_pk")).values(values),
        [{**dict(zip(names, r, strict=False)), **extra, "b_pk": r[0]} for r in rows],
    )


def _retire(conn: Connection, table: Table, pk: str, keys: list[Any], now: datetime) -> None:
    if keys:
        conn.execute(
            update(table).where(table.c[pk] == bindparam("b_pk")).values(removed_at=now),
            [{"b_pk": k} for k in keys],
        )
