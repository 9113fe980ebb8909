"""Roster import: every validation rule fails with file, row and column and writes nothing;
re-import is idempotent and reports what changed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from matrix import roster as roster_module
from matrix.blueprint import Blueprint
from matrix.db import make_engine, migrate
from matrix.errors import RosterError
from matrix.models import Person, Position, Unit
from matrix.roster import import_roster, read_roster
from tests import worlds


def counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (Unit, Person, Position)
        )


def snapshot(engine: Engine) -> tuple[list[tuple[object, ...]], ...]:
    with engine.connect() as conn:
        return tuple(
            [
                tuple(r)
                for r in conn.execute(
                    select(t.__table__).order_by(*t.__table__.primary_key.columns)
                )
            ]  # type: ignore[attr-defined]
            for t in (Unit, Person, Position)
        )


def load(
    tmp_path: Path, bp: Blueprint, units: list[worlds.Row], persons: list[worlds.Row], **kw: object
):
    u, p = worlds.write_roster(tmp_path, units, persons, **kw)  # type: ignore[arg-type]
    return read_roster(u, p, bp)


def problems_of(
    tmp_path: Path, bp: Blueprint, units: list[worlds.Row], persons: list[worlds.Row]
) -> list[str]:
    with pytest.raises(RosterError) as err:
        load(tmp_path, bp, units, persons)
    return [str(p) for p in err.value.problems]


# --- each validation rule, with a failing input -------------------------------------------------

UNIT_BREAKS = [
    # (which row to replace, the broken row, text expected among the problems)
    (
        2,
        ("K1", "乙1县", "county", "C9"),
        "units.csv 第 4 行 「parent_code」列：上级代码 C9 不在单位表中",
    ),
    (
        3,
        ("K1", "重复县", "county", "C1"),
        "units.csv 第 5 行 「code」列：单位代码 K1 重复（第 4 行已有）",
    ),
    (
        2,
        ("K1", "乙1县", "county", "P"),
        "units.csv 第 4 行 「parent_code」列：层级顺序不对：乙1县（K1）是县级，上级应为市级单位，"
        "但上级代码指向 示范省（P）是省级",
    ),
    (2, ("K1", "乙1县", "乡镇", "C1"), "units.csv 第 4 行 「level」列：层级 '乡镇' 无法识别"),
    (2, ("K1", "", "county", "C1"), "units.csv 第 4 行 「name」列：单位名称为空"),
    (
        2,
        ("K 1/x", "乙1县", "county", "C1"),
        "units.csv 第 4 行 「code」列：单位代码 'K1/x' 只能含字母、数字和 _ . -",
    ),
    (
        1,
        ("C1", "甲市", "city", ""),
        "units.csv 第 3 行 「parent_code」列：上级代码为空，但 P 已是顶层单位；名册只能有一个顶层单位",
    ),
]


@pytest.mark.parametrize(("index", "row", "expected"), UNIT_BREAKS)
def test_broken_unit_row_is_named_and_nothing_is_written(
    province_db: Engine, bp: Blueprint, tmp_path: Path, index: int, row: worlds.Row, expected: str
) -> None:
    before = snapshot(province_db)
    units, persons = worlds.province(counties=2, schools=1)
    units[index] = row
    problems = problems_of(tmp_path, bp, units, persons)
    assert any(expected in p for p in problems), problems
    assert snapshot(province_db) == before


def test_cycle_is_reported(bp: Blueprint, tmp_path: Path) -> None:
    units = [("P", "省", "province", ""), ("A", "甲", "city", "B"), ("B", "乙", "city", "A")]
    problems = problems_of(tmp_path, bp, units, [])
    assert any(
        "上级关系成环：A → B → A" in p or "上级关系成环：B → A → B" in p for p in problems
    ), problems


PERSON_BREAKS = [
    (
        0,
        ("X9", "张三", "office_staff", "13900000001", "zhangsan01"),
        "persons.csv 第 2 行 「unit_code」列：单位代码 X9 不在单位表中",
    ),
    (
        0,
        ("P", "张三", "舞蹈老师", "13900000001", "zhangsan01"),
        "persons.csv 第 2 行 「role」列：岗位 '舞蹈老师' 不在蓝图中",
    ),
    (
        0,
        ("P", "张三", "brigade_counselor", "13900000001", "zhangsan01"),
        "岗位 大队辅导员 只设在学校级单位，示范省 是省级",
    ),
    (
        0,
        ("P", "张三", "office_staff", "1390000", "zhangsan01"),
        "persons.csv 第 2 行 「phone」列：手机号 '1390000' 无效",
    ),
    (
        0,
        ("P", "张三", "office_staff", "13900000001", "3zhang"),
        "「wechat_id」列：微信号 '3zhang' 格式不对",
    ),
    (
        0,
        ("P", "", "office_staff", "13900000001", "zhangsan01"),
        "persons.csv 第 2 行 「name」列：姓名为空",
    ),
    (
        1,
        ("P", "李四", "office_staff", "13900000002", "wxPn001"),
        "persons.csv 第 3 行 「wechat_id」列：微信号 wxPn001 重复：第 2 行的 Pffice_staff0 已使用",
    ),
]


@pytest.mark.parametrize(("index", "row", "expected"), PERSON_BREAKS)
def test_broken_person_row_is_named_and_nothing_is_written(
    province_db: Engine, bp: Blueprint, tmp_path: Path, index: int, row: worlds.Row, expected: str
) -> None:
    before = snapshot(province_db)
    units, persons = worlds.province(counties=2, schools=1)
    persons[index] = row
    problems = problems_of(tmp_path, bp, units, persons)
    assert any(expected.replace("Pffice_staff0", "Poffice_staff0") in p for p in problems), problems
    assert snapshot(province_db) == before


def test_same_person_twice_in_one_role_is_a_duplicate_row(bp: Blueprint, tmp_path: Path) -> None:
    units, persons = worlds.province(counties=1, schools=1)
    persons.append(persons[0])
    problems = problems_of(tmp_path, bp, units, persons)
    assert any("与第 2 行重复" in p for p in problems), problems


def test_every_problem_is_listed_not_only_the_first(bp: Blueprint, tmp_path: Path) -> None:
    units, persons = worlds.province(counties=2, schools=1)
    units[2] = ("K1", "乙1县", "county", "C9")
    persons[0] = ("P", "张三", "舞蹈老师", "1", "")
    persons[1] = ("P", "", "office_staff", "", "")
    problems = problems_of(tmp_path, bp, units, persons)
    assert len(problems) == 4, problems


def test_missing_header_names_the_columns(bp: Blueprint, tmp_path: Path) -> None:
    u = worlds.write_csv(tmp_path / "u.csv", ("code", "name", "level"), [("P", "省", "province")])
    p = worlds.write_csv(tmp_path / "p.csv", worlds.PERSON_HEADER, [])
    with pytest.raises(
        RosterError, match=re.escape("u.csv 第 1 行：缺少列 上级代码（parent_code）")
    ):
        read_roster(u, p, bp)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "文件是空的"), (b"\xff\xfe\x00\xd8\x00", "无法识别文件编码")],
)
def test_unreadable_files(bp: Blueprint, tmp_path: Path, content: bytes, expected: str) -> None:
    (tmp_path / "u.csv").write_bytes(content)
    p = worlds.write_csv(tmp_path / "p.csv", worlds.PERSON_HEADER, [])
    with pytest.raises(RosterError, match=expected):
        read_roster(tmp_path / "u.csv", p, bp)


def test_wrong_file_type_and_missing_file(bp: Blueprint, tmp_path: Path) -> None:
    (tmp_path / "u.json").write_text("{}")
    with pytest.raises(RosterError, match=re.escape("只支持 .csv 和 .xlsx 文件")):
        read_roster(tmp_path / "u.json", tmp_path / "p.csv", bp)
    with pytest.raises(RosterError, match="文件不存在"):
        read_roster(tmp_path / "nope.csv", tmp_path / "p.csv", bp)


def test_a_failure_while_writing_rolls_everything_back(
    province_db: Engine, bp: Blueprint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(province_db)
    units, persons = worlds.province(counties=4, schools=2)
    roster = load(tmp_path, bp, units, persons)
    real_insert = roster_module._insert

    def insert_then_fail(conn, table, *args, **kwargs):  # type: ignore[no-untyped-def]
        real_insert(conn, table, *args, **kwargs)
        if table.name == "person":
            raise RuntimeError("disk full")

    monkeypatch.setattr(roster_module, "_insert", insert_then_fail)
    with pytest.raises(RuntimeError):
        import_roster(province_db, roster, bp)
    assert snapshot(province_db) == before


# --- formats, headers and clean-up --------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"fmt": "csv", "encoding": "utf-8"},
        {"fmt": "csv", "encoding": "utf-8-sig"},
        {"fmt": "csv", "encoding": "gb18030", "chinese": True},
        {"fmt": "xlsx"},
        {"fmt": "xlsx", "chinese": True},
    ],
    ids=["utf8", "utf8-bom", "gb18030-chinese-headers", "xlsx", "xlsx-chinese-headers"],
)
def test_formats_and_headers(
    engine: Engine, bp: Blueprint, tmp_path: Path, options: dict[str, object]
) -> None:
    units, persons = worlds.province(counties=1, schools=1)
    report = import_roster(engine, load(tmp_path, bp, units, persons, **options), bp)
    assert (report.units.added, report.persons.added) == (len(units), len(persons))
    with engine.connect() as conn:
        assert (
            conn.execute(select(Unit.name).where(Unit.code == "K1S1")).scalar_one()
            == "乙1县第1小学"
        )


def test_chinese_levels_roles_and_untidy_cells_are_normalised(
    engine: Engine, bp: Blueprint, tmp_path: Path
) -> None:
    units = [
        ("P", "示范省", "省级", ""),
        ("Ｃ１", "\u3000甲　市 ", "地市", "P"),
        ("K1", " 乙县", "区县", " C1 "),
        ("K1S1", "乙县  第一小学", "学校", "K1"),
    ]
    persons = [
        ("C1", " 王\u3000芳 ", "少年部长", "+86 139-0000-0001", " wangfang01 "),
        ("K1S1", "李雷", "大队辅导员", "(0451)53603185", ""),
    ]
    import_roster(engine, load(tmp_path, bp, units, persons), bp)
    with engine.connect() as conn:
        assert conn.execute(
            select(Unit.code, Unit.name, Unit.level).where(Unit.parent_code == "P")
        ).one() == ("C1", "甲 市", "city")
        assert (
            conn.execute(select(Unit.name).where(Unit.code == "K1S1")).scalar_one()
            == "乙县 第一小学"
        )
        wang = conn.execute(
            select(Person.name, Person.phone, Person.wechat_id).where(Person.name == "王 芳")
        ).one()
        assert wang == ("王 芳", "13900000001", "wangfang01")
        assert (
            conn.execute(select(Person.phone).where(Person.name == "李雷")).scalar_one()
            == "045153603185"
        )
        assert (
            conn.execute(select(Unit.path).where(Unit.code == "K1S1")).scalar_one()
            == "/P/C1/K1/K1S1/"
        )


def test_one_person_with_two_roles_is_one_person(
    engine: Engine, bp: Blueprint, tmp_path: Path
) -> None:
    units, persons = worlds.province(counties=1, schools=1)
    persons.append(("C1", "C1office_staff0", "committee_member", persons[3][3], persons[3][4]))
    report = import_roster(engine, load(tmp_path, bp, units, persons), bp)
    assert report.persons.added == len(persons) - 1
    assert report.positions.added == len(persons)


# --- re-import ----------------------------------------------------------------------------------


def test_reimport_is_idempotent(province_db: Engine, bp: Blueprint, tmp_path: Path) -> None:
    before = snapshot(province_db)
    report = import_roster(province_db, load(tmp_path, bp, *worlds.province()), bp)
    assert report.unchanged
    assert snapshot(province_db) == before


def test_reimport_reports_added_changed_removed(
    province_db: Engine, bp: Blueprint, tmp_path: Path
) -> None:
    units, persons = worlds.province()
    ids_before = dict(_ids(province_db))
    units = [u for u in units if u[0] != "K3S2"]  # a school closed
    persons = [p for p in persons if p[0] != "K3S2"]
    units[1] = ("C1", "甲市（新）", "city", "P")  # renamed
    units.append(("K3S3", "乙3县第3小学", "school", "K3"))  # a new school
    persons.append(("K3S3", "新老师", "brigade_counselor", "13700000000", "newteacher1"))
    persons[0] = (*persons[0][:3], "13600000000", persons[0][4])  # new phone
    report = import_roster(province_db, load(tmp_path, bp, units, persons), bp)
    assert (report.units.added, report.units.changed, report.units.removed) == (1, 1, 1)
    assert (report.persons.added, report.persons.changed, report.persons.removed) == (1, 1, 3)
    assert report.units.examples["removed"] == ["乙3县第2小学（K3S2）"]
    with province_db.connect() as conn:
        removed = conn.execute(select(Unit.removed_at).where(Unit.code == "K3S2")).scalar_one()
        assert removed is not None  # kept, marked: its people may still sit in groups
        assert (
            conn.execute(
                select(func.count()).select_from(Position).where(Position.unit_code == "K3S2")
            ).scalar_one()
            == 0
        )
    ids_after = dict(_ids(province_db))
    assert all(ids_after[k] == v for k, v in ids_before.items()), "person ids are stable"
    again = import_roster(province_db, load(tmp_path, bp, units, persons), bp)
    assert again.unchanged


def test_a_reordered_roster_renumbers_posts_as_a_first_import_would(
    province_db: Engine, bp: Blueprint, tmp_path: Path
) -> None:
    """Posts are compared in step with the stored ones while they match, then by key: a file
    that ends in another order, with a post dropped and one added, is stored as it reads."""
    units, persons = worlds.province()
    ids_before = dict(_ids(province_db))
    dropped = persons.pop(3)
    persons[5:] = reversed(persons[5:])
    persons.insert(7, ("K1S1", "新老师", "brigade_counselor", "13700000000", "newteacher1"))
    report = import_roster(province_db, load(tmp_path, bp, units, persons), bp)
    assert (report.positions.added, report.positions.removed) == (1, 1)
    assert report.persons.removed == 1 and report.persons.examples["removed"] == [dropped[1]]

    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    migrate(fresh)
    import_roster(fresh, load(tmp_path, bp, units, persons), bp)
    assert _posts(province_db) == _posts(fresh)
    assert all(dict(_ids(province_db))[k] == v for k, v in ids_before.items() if k != dropped[1])
    assert import_roster(province_db, load(tmp_path, bp, units, persons), bp).unchanged


def test_persons_are_compared_a_batch_at_a_time_and_then_one_by_one(
    engine: Engine, bp: Blueprint, tmp_path: Path
) -> None:
    """Stored persons are compared with the roster's a thousand at a time while they are the
    same, in the same order, under the same ids; from the first that differs, one by one. A
    change in the middle of a batch, in a later one, and a removal that shifts every later
    person's number are each found, and nothing else is."""
    units, persons = worlds.province(counties=30, schools=30)
    assert len(persons) > 2500
    import_roster(engine, load(tmp_path, bp, units, persons), bp)
    for i in (1499, len(persons) - 2):  # mid second batch; the last batch
        persons[i] = (*persons[i][:3], f"1390000{i:04d}", persons[i][4])
    report = import_roster(engine, load(tmp_path, bp, units, persons), bp)
    assert (report.persons.added, report.persons.changed, report.persons.removed) == (0, 2, 0)
    assert import_roster(engine, load(tmp_path, bp, units, persons), bp).unchanged
    gone = persons.pop(10)  # every later person's number moves: no batch is in step again
    report = import_roster(engine, load(tmp_path, bp, units, persons), bp)
    assert (report.persons.added, report.persons.changed, report.persons.removed) == (0, 0, 1)
    assert report.persons.examples["removed"] == [gone[1]]
    assert import_roster(engine, load(tmp_path, bp, units, persons), bp).unchanged


def _posts(engine: Engine) -> set[tuple[object, ...]]:
    with engine.connect() as conn:
        query = select(Person.key, Position.unit_code, Position.role, Position.seq).join(
            Person, Person.id == Position.person_id
        )
        return {tuple(r) for r in conn.execute(query)}


def test_person_keeps_their_id_when_a_wechat_id_is_added(
    engine: Engine, bp: Blueprint, tmp_path: Path
) -> None:
    units, persons = worlds.province(counties=1, schools=1)
    persons[0] = (*persons[0][:4], "")
    import_roster(engine, load(tmp_path, bp, units, persons), bp)
    old = dict(_ids(engine))
    persons[0] = (*persons[0][:4], "gotwechat01")
    report = import_roster(engine, load(tmp_path, bp, units, persons), bp)
    assert (report.persons.added, report.persons.changed, report.persons.removed) == (0, 1, 0)
    with engine.connect() as conn:
        pid = conn.execute(select(Person.id).where(Person.wechat_id == "gotwechat01")).scalar_one()
    assert pid in old.values()


def test_removed_person_comes_back_with_the_same_id(
    province_db: Engine, bp: Blueprint, tmp_path: Path
) -> None:
    units, persons = worlds.province()
    gone = persons.pop(5)
    import_roster(province_db, load(tmp_path, bp, units, persons), bp)
    with province_db.connect() as conn:
        pid, removed_at = conn.execute(
            select(Person.id, Person.removed_at).where(Person.wechat_id == gone[4])
        ).one()
    assert removed_at is not None
    persons.insert(5, gone)
    report = import_roster(province_db, load(tmp_path, bp, units, persons), bp)
    assert (report.persons.added, report.persons.changed) == (0, 1)
    with province_db.connect() as conn:
        assert conn.execute(
            select(Person.id, Person.removed_at).where(Person.wechat_id == gone[4])
        ).one() == (pid, None)


def test_dry_run_reports_the_same_and_writes_nothing(
    province_db: Engine, bp: Blueprint, tmp_path: Path
) -> None:
    units, persons = worlds.province(counties=4)
    before = snapshot(province_db)
    dry = import_roster(province_db, load(tmp_path, bp, units, persons), bp, dry_run=True)
    assert snapshot(province_db) == before
    real = import_roster(province_db, load(tmp_path, bp, units, persons), bp)
    assert dry.dry_run and not real.dry_run
    for kind in ("units", "persons", "positions"):
        d, r = getattr(dry, kind), getattr(real, kind)
        assert (d.added, d.changed, d.removed, d.examples) == (
            r.added,
            r.changed,
            r.removed,
            r.examples,
        )


def _ids(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(select(Person.name, Person.id))]


MOBILE_CELLS = [
    "13800138000",
    "19912345678",
    "",
    "12800138000",
    "1380013800",
    "138001380001",
    "１３８００１３８０００",
    "١٣٨٠٠١٣٨٠٠٠",
    "+8613800138000",
    " 13800138000",
    "1380013800\n",
    "138 0013 8000",
    "13800138000\n13900139000",
    "13800138000\n",
    "23800138000",
    "1a800138000",
]
WECHAT_CELLS = [
    "abcdef",
    "a12345678901234567890"[:20],
    "a_b-c1",
    "",
    "abcde",
    "1abcdef",
    "_abcdef",
    "abc def",
    "abcdé1",
    "张三abcdef",
    "wxid_abcd",
    "wxid_" + "a" * 40,
    "wxid_" + "a" * 41,
    "wxid_ab-cdefghijklmnopq",
    "ab\ncdefg",
    "abcdef\nghijkl",
    "abcdef\n",
    "abcdefghijklmnopqrstu",
]


@pytest.mark.parametrize("cell", MOBILE_CELLS)
def test_a_column_of_mobiles_is_told_as_each_cell_would_be(cell: str) -> None:
    """The batch check (whole column at once) agrees with the pattern each cell is held to:
    alone, and among valid cells before and after it."""
    from matrix.roster import _PLAIN_MOBILE, _plain_mobiles

    alone = cell == "" or _PLAIN_MOBILE.fullmatch(cell) is not None
    assert _plain_mobiles([cell]) == alone
    assert _plain_mobiles(["13900000001", cell, "", "15000000000"]) == alone


@pytest.mark.parametrize("cell", WECHAT_CELLS)
def test_a_column_of_wechat_ids_is_told_as_each_cell_would_be(cell: str) -> None:
    from matrix.roster import _WECHAT_ID, _plain_wechat_ids

    alone = cell == "" or _WECHAT_ID.fullmatch(cell) is not None
    assert _plain_wechat_ids([cell]) == alone
    assert _plain_wechat_ids(["wxabcdef", cell, "", "Zz_-09ab"]) == alone
