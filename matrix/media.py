"""The media-account registry of seed 000 (附表 网站（网页）及自媒体建设情况统计表).

City (市地) and county (县区) units register their website, web page and self-media accounts —
公众号, 视频号, 抖音 and 快手 only, as the form's notes say — either one at a time (the chat
command ``#登记 公众号 名称`` calls ``register_media``) or by importing a file
(``import_media``). ``media_table`` gives one row per city and county unit; a unit that has
registered nothing is a *missing* row, never a skipped one. Writing ``无`` records that a unit
has no such account, which the table shows as 无 rather than as missing.

>>> parse_registration("公众号 乙县少先队")
Registration(kind='mp', value='乙县少先队', unit=None)
>>> parse_registration("K1 抖音：无")
Registration(kind='douyin', value='', unit='K1')
>>> parse_registration("无 视频号")
Registration(kind='channels', value='', unit=None)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, Engine, and_, insert, select, update

from matrix import audit_log
from matrix.blueprint import Blueprint, normalize_label
from matrix.errors import MatrixError, Problem, ProblemsError, RosterError
from matrix.limits import CappedProblems, InputLimits
from matrix.media_form import HEADER_SEARCH, read_form
from matrix.models import utcnow
from matrix.scope import UNIT, UnitRef, resolve_target, under
from matrix.sheets import Column, Sheet, read_sheet
from matrix.tables import MEDIA_ACCOUNT


@dataclass(frozen=True)
class MediaKind:
    key: str
    label: str
    aliases: tuple[str, ...]
    is_link: bool = False  # a URL rather than an account name


MEDIA_KINDS: tuple[MediaKind, ...] = (
    MediaKind("website", "网站网址", ("网站", "官网", "网址", "website"), is_link=True),
    MediaKind("webpage", "网页链接", ("网页", "链接", "webpage"), is_link=True),
    MediaKind("mp", "公众号", ("微信公众号", "公众号名称", "mp", "wechat"), is_link=False),
    MediaKind("channels", "视频号", ("微信视频号", "channels")),
    MediaKind("douyin", "抖音", ("抖音号", "douyin")),
    MediaKind("kuaishou", "快手", ("快手号", "kuaishou")),
)
SELF_MEDIA = ("mp", "channels", "douyin", "kuaishou")
NONE_WORDS = frozenset({"无", "没有", "暂无", "未开通", "未建", "none", "-", "—", "/"})
_KIND_INDEX = {
    normalize_label(name).lower(): kind
    for kind in MEDIA_KINDS
    for name in (kind.key, kind.label, *kind.aliases)
}
_LINK = re.compile(r"^(?:https?://)?[^\s/.]+(?:\.[^\s/.]+)+(?::\d+)?(?:/\S*)?$", re.IGNORECASE)
MAX_NAME = 64


class MediaError(MatrixError):
    """A registration that cannot be recorded (unknown kind, bad link, unit out of scope …)."""


class MediaImportError(ProblemsError):
    """A media file with problems; nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(
            problems,
            f"登记表有 {len(problems)} 处错误，未写入任何数据",
            fix="请按提示逐条修改后重新导入",
        )


def find_kind(text: str) -> MediaKind | None:
    """The kind a person wrote (公众号, 微信公众号, mp …), or None."""
    return _KIND_INDEX.get(normalize_label(text).lower())


def kind_names() -> str:
    return "、".join(k.label for k in MEDIA_KINDS)


def clean_value(kind: MediaKind, text: str) -> str:
    """The value to store: '' for 无, else the trimmed link or name; ``ValueError`` with a
    Chinese reason when it cannot be right.

    >>> clean_value(MEDIA_KINDS[0], " www.example.gov.cn "), clean_value(MEDIA_KINDS[2], "暂无")
    ('www.example.gov.cn', '')
    """
    value = " ".join(unicodedata.normalize("NFKC", text).split())
    if value.lower() in NONE_WORDS:
        return ""
    if not value:
        raise ValueError(f"{kind.label}为空；没有请写「无」")
    if kind.is_link:
        if not _LINK.match(value):
            raise ValueError(
                f"{kind.label} {value!r} 不像网址，应如 www.example.gov.cn 或 https://…"
            )
        if len(value) > 500:
            raise ValueError(f"{kind.label}过长（超过 500 个字符）")
    elif len(value) > MAX_NAME:
        raise ValueError(f"{kind.label}名称过长（超过 {MAX_NAME} 个字）")
    return value


@dataclass(frozen=True)
class Registration:
    """What ``#登记`` was asked to record."""

    kind: str
    value: str
    unit: str | None = None  # a unit code or name; None = the requester's own unit


def parse_registration(text: str) -> Registration:
    """Parse the words after ``#登记``: ``[单位] 类型 名称``; ``类型：名称`` and ``无 类型``
    work too."""
    words = []
    for i, word in enumerate(unicodedata.normalize("NFKC", text).split()):
        # 公众号：名称 without a space; a colon later on (https://…) is part of the value
        head, colon, rest = word.partition(":")
        if i < 2 and colon and find_kind(head) is not None:
            words += [head, rest] if rest else [head]
        else:
            words.append(word)
    usage = f"例如：#登记 公众号 乙县少先队；类型可以是 {kind_names()}；没有请写「无」"
    if not words:
        raise MediaError("请写明要登记的类型和名称", fix=usage)
    if len(words) in (2, 3) and words[-2].lower() in NONE_WORDS and find_kind(words[-1]):
        # people say it both ways round: 公众号 无, 无 公众号
        words[-2:] = [words[-1], words[-2]]
    unit = None
    if find_kind(words[0]) is None and len(words) > 1 and find_kind(words[1]) is not None:
        unit, words = words[0], words[1:]
    kind = find_kind(words[0])
    if kind is None and words[0].lower() in NONE_WORDS:
        raise MediaError(f"「{words[0]}」后面请只写类型，如：无 公众号", fix=usage)
    if kind is None:
        raise MediaError(f"不认识登记类型 {words[0]!r}", fix=usage)
    if len(words) < 2:
        raise MediaError(f"请在「{kind.label}」后写上名称或网址", fix=usage)
    try:
        value = clean_value(kind, " ".join(words[1:]))
    except ValueError as exc:
        raise MediaError(str(exc), fix=usage) from exc
    return Registration(kind.key, value, unit)


def media_levels(bp: Blueprint) -> list[str]:
    """The levels the form counts: 市地 and 县区 (its note 1), as this blueprint names them."""
    found = [bp.find_level(name) for name in ("市地", "县区")]
    levels = [lvl.key for lvl in found if lvl is not None]
    if not levels:
        raise MediaError(
            "蓝图中没有市地、县区层级，无法统计网站及自媒体", fix="请检查蓝图的层级名称和别名"
        )
    return levels


@dataclass(frozen=True)
class MediaChange:
    unit: UnitRef
    kind: MediaKind
    old: str | None  # None = nothing was registered before
    new: str


def register_media(
    engine: Engine,
    bp: Blueprint,
    registration: Registration,
    *,
    requester: str,
    actor: str,
) -> MediaChange:
    """Record one registration for the named unit (default: the requester's own unit).

    The unit must be a 市地 or 县区 unit within the requester's subtree. Written with an audit
    entry in one transaction; registering the same kind again replaces the value.
    """
    with engine.begin() as conn:
        return record_media(conn, bp, registration, requester=requester, actor=actor)


def record_media(
    conn: Connection, bp: Blueprint, registration: Registration, *, requester: str, actor: str
) -> MediaChange:
    """``register_media`` inside the caller's transaction (the chat command's, which logs the
    command in the same transaction)."""
    kind = find_kind(registration.kind)
    if kind is None:
        raise MediaError(f"不认识登记类型 {registration.kind!r}", fix=f"可用：{kind_names()}")
    unit = resolve_target(conn, requester, registration.unit)
    levels = media_levels(bp)
    if unit.level not in levels:
        counted = "、".join(bp.level(lvl).label for lvl in levels)
        raise MediaError(
            f"网站及自媒体统计表只统计到{counted}级单位，{unit.name}是{bp.level(unit.level).label}级",
            fix="请在市地或县区单位的群里登记，或写明单位：#登记 单位代码 公众号 名称",
        )
    old = _existing(conn, [unit.code]).get((unit.code, kind.key))
    _write(conn, unit.code, kind.key, registration.value, old, actor)
    audit_log.record(
        conn,
        actor,
        "media.register",
        unit.code,
        kind=kind.key,
        value=registration.value,
        old=None if old is None else old[1],
    )
    return MediaChange(unit, kind, None if old is None else old[1], registration.value)


def _existing(conn: Connection, codes: list[str]) -> dict[tuple[str, str], tuple[int, str]]:
    found: dict[tuple[str, str], tuple[int, str]] = {}
    for i in range(0, len(codes), 500):
        for rid, code, kind, value in conn.execute(
            select(
                MEDIA_ACCOUNT.c.id,
                MEDIA_ACCOUNT.c.unit_code,
                MEDIA_ACCOUNT.c.kind,
                MEDIA_ACCOUNT.c.value,
            ).where(MEDIA_ACCOUNT.c.unit_code.in_(codes[i : i + 500]))
        ):
            found[(code, kind)] = (rid, value)
    return found


def _write(
    conn: Connection, code: str, kind: str, value: str, old: tuple[int, str] | None, actor: str
) -> None:
    now = utcnow()
    if old is None:
        conn.execute(
            insert(MEDIA_ACCOUNT),
            [{"unit_code": code, "kind": kind, "value": value, "actor": actor, "updated_at": now}],
        )
    elif old[1] != value:
        conn.execute(
            update(MEDIA_ACCOUNT)
            .where(MEDIA_ACCOUNT.c.id == old[0])
            .values(value=value, actor=actor, updated_at=now)
        )


MEDIA_COLUMNS = (
    Column("code", ("code", "单位代码", "代码"), required=False),
    Column("name", ("name", "单位名称", "单位名称(市、县、区)", "单位"), required=False),
    *(Column(k.key, (k.key, k.label, *k.aliases), required=False) for k in MEDIA_KINDS),
)


@dataclass
class MediaImportReport:
    """What an import wrote: rows read, values added or changed, values already so."""

    rows: int = 0
    units: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    examples: list[str] = field(default_factory=list)


def _media_sheet(path: Path, limits: InputLimits | None) -> Sheet:
    """A CSV with its header in row 1, or the XLSX form as the summary writes it (the file
    is checked against ``limits`` by ``read_sheet`` before either is parsed)."""
    sheet = read_sheet(path, MEDIA_COLUMNS, limits)
    if "code" in sheet.index or "name" in sheet.index or path.suffix.lower() != ".xlsx":
        return sheet
    return read_form(path, MEDIA_COLUMNS, {"code", "name"}) or sheet


def import_media(
    engine: Engine,
    bp: Blueprint,
    path: str | Path,
    *,
    requester: str,
    actor: str,
    limits: InputLimits | None = None,
) -> MediaImportReport:
    """Import registrations from a CSV or XLSX file (header in row 1: 单位代码 or 单位名称, and
    any of 网站网址, 网页链接, 公众号, 视频号, 抖音, 快手 — the media table's CSV export is such
    a file). Empty cells leave a value as it is; 无 records that there is none.

    Every row is checked first; any problem raises ``MediaImportError`` listing each one, and
    nothing is written. Otherwise all rows are written in one transaction with one audit entry.
    A file past ``limits`` is refused before it is parsed.
    """
    try:
        return _import_media(engine, bp, path, requester=requester, actor=actor, limits=limits)
    except RosterError as exc:  # the file itself: too big, unreadable, a row past the limits
        raise MediaImportError(exc.problems) from exc


def _import_media(
    engine: Engine,
    bp: Blueprint,
    path: str | Path,
    *,
    requester: str,
    actor: str,
    limits: InputLimits | None,
) -> MediaImportReport:
    sheet = _media_sheet(Path(path), limits)
    head = f"{sheet.path.name} 第 1 行"
    if "code" not in sheet.index and "name" not in sheet.index:
        raise MediaImportError(
            [Problem(head, f"缺少「单位代码」或「单位名称」列（前 {HEADER_SEARCH} 行都没有找到）")]
        )
    kinds = [k for k in MEDIA_KINDS if k.key in sheet.index]
    if not kinds:
        raise MediaImportError([Problem(head, f"没有可登记的列，应至少有 {kind_names()} 之一")])
    levels = media_levels(bp)
    with engine.begin() as conn:
        scope = resolve_target(conn, requester)
        units = conn.execute(
            select(UNIT.c.code, UNIT.c.name, UNIT.c.parent_code).where(
                UNIT.c.level.in_(levels),
                UNIT.c.removed_at.is_(None),
                under(UNIT.c.path, scope.path),
            )
        ).all()
        by_code = {code: name for code, name, _ in units}
        by_name: dict[str, list[str]] = {}
        for code, name, _ in units:
            by_name.setdefault(name, []).append(code)
        place = _Place(by_code, by_name, {code: parent for code, _, parent in units}, scope)

        problems: list[Problem] = CappedProblems(MediaImportError)
        wanted: dict[tuple[str, str], str] = {}
        first_row: dict[str, int] = {}
        report = MediaImportReport()
        for row, rec in sheet.records():
            report.rows += 1
            code = place.unit_of(rec, sheet.where(row), problems)
            if code is None:
                continue
            if code in first_row:
                problems.append(
                    Problem(
                        sheet.where(row), f"{by_code[code]} 重复（第 {first_row[code]} 行已有）"
                    )
                )
                continue
            first_row[code] = row
            for kind in kinds:
                text = rec.get(kind.key, "").strip()
                if not text:
                    continue
                try:
                    wanted[(code, kind.key)] = clean_value(kind, text)
                except ValueError as exc:
                    problems.append(Problem(sheet.where(row, kind.key), str(exc)))
        if problems:
            raise MediaImportError(problems)

        old = _existing(conn, sorted(first_row))
        for (code, kind_key), value in wanted.items():
            before = old.get((code, kind_key))
            if before is None:
                report.added += 1
            elif before[1] != value:
                report.changed += 1
            else:
                report.unchanged += 1
                continue
            _write(conn, code, kind_key, value, before, actor)
            if len(report.examples) < 10:
                report.examples.append(by_code[code])
        report.units = len({code for code, _ in wanted})
        audit_log.record(
            conn,
            actor,
            "media.import",
            scope.code,
            file=str(path),
            rows=report.rows,
            added=report.added,
            changed=report.changed,
        )
    return report


@dataclass
class _Place:
    """Finds the unit a row means. A name two units share (鹤岗 and 佳木斯 both have a 向阳区)
    is settled by the rows around it: the form lists each county under its city."""

    by_code: dict[str, str]
    by_name: dict[str, list[str]]
    parent: dict[str, str | None]
    scope: UnitRef
    last: str | None = None

    def unit_of(self, rec: dict[str, str], where: str, problems: list[Problem]) -> str | None:
        code = "".join(unicodedata.normalize("NFKC", rec.get("code", "")).split())
        name = " ".join(rec.get("name", "").split())
        scope = self.scope
        if code:
            if code not in self.by_code:
                problems.append(
                    Problem(where, f"单位代码 {code} 不是{scope.name}下属的市地或县区单位")
                )
                return None
            self.last = code
            return code
        if not name:
            problems.append(Problem(where, "单位代码和单位名称都为空"))
            return None
        codes = self.by_name.get(name, [])
        if len(codes) > 1 and self.last is not None:
            near = {self.last, self.parent.get(self.last)}
            codes = [c for c in codes if self.parent.get(c) in near] or codes
        if len(codes) == 1:
            self.last = codes[0]
            return codes[0]
        if not codes:
            problems.append(Problem(where, f"{scope.name}下没有叫 {name} 的市地或县区单位"))
        else:
            problems.append(
                Problem(where, f"{scope.name}下有 {len(codes)} 个单位叫 {name}，请填写单位代码")
            )
        return None


@dataclass(frozen=True)
class MediaRow:
    """One city or county unit: its registrations by kind (None = not registered, '' = 无)."""

    code: str
    name: str
    level: str
    level_label: str
    parent_name: str
    values: dict[str, str | None]

    @property
    def reported(self) -> bool:
        return any(v is not None for v in self.values.values())

    @property
    def self_media(self) -> list[tuple[str, str]]:
        """(label, name) of each registered self-media account, 无 included."""
        labels = {k.key: k.label for k in MEDIA_KINDS}
        return [(labels[k], v) for k in SELF_MEDIA if (v := self.values.get(k)) is not None]


@dataclass(frozen=True)
class MediaTable:
    unit: UnitRef
    as_of: date
    rows: list[MediaRow]

    @property
    def missing(self) -> list[MediaRow]:
        return [r for r in self.rows if not r.reported]

    @property
    def reported(self) -> int:
        return len(self.rows) - len(self.missing)


def media_table(
    engine: Engine, bp: Blueprint, *, requester: str, target: str | None = None, as_of: date
) -> MediaTable:
    """One row per city and county unit in ``target``'s subtree, in tree order, with what each
    has registered. Units that registered nothing are kept as missing rows."""
    levels = media_levels(bp)
    parent = UNIT.alias("parent")
    with engine.connect() as conn:
        unit = resolve_target(conn, requester, target)
        query = (
            select(
                UNIT.c.code,
                UNIT.c.name,
                UNIT.c.level,
                UNIT.c.path,
                parent.c.name,
                MEDIA_ACCOUNT.c.kind,
                MEDIA_ACCOUNT.c.value,
            )
            .select_from(
                UNIT.outerjoin(parent, parent.c.code == UNIT.c.parent_code).outerjoin(
                    MEDIA_ACCOUNT, MEDIA_ACCOUNT.c.unit_code == UNIT.c.code
                )
            )
            .where(
                and_(
                    UNIT.c.level.in_(levels),
                    UNIT.c.removed_at.is_(None),
                    under(UNIT.c.path, unit.path),
                )
            )
        )
        rows: dict[str, MediaRow] = {}
        paths: dict[str, str] = {}
        for code, name, level, path, parent_name, kind, value in conn.execute(query):
            row = rows.get(code)
            if row is None:
                paths[code] = path
                row = rows[code] = MediaRow(
                    code,
                    name,
                    level,
                    bp.level(level).label,
                    parent_name or "",
                    {k.key: None for k in MEDIA_KINDS},
                )
            if kind is not None:
                row.values[kind] = value
    # tree order whatever the database collation: a city, then its counties
    return MediaTable(unit, as_of, sorted(rows.values(), key=lambda r: paths[r.code]))
