"""Hostile and broken input files (issue 9): each bomb is refused by the real command line
under a memory cap, with a Chinese message naming the limit and its setting, no traceback and
nothing written; an import that would empty the roster is refused unless asked for.

How fast each bomb is refused is measured by tests/benchmarks/bench_bombs.py, not here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from bot.cli import app
from matrix import audit_log
from matrix.blueprint import Blueprint
from matrix.errors import RosterError
from matrix.limits import InputLimits
from matrix.media import MediaImportError, import_media
from matrix.models import AuditEntry, Person, Position, Unit
from matrix.roster import MassRemoval, import_roster, read_roster
from tests import worlds
from tests.bombs import BOMBS

ROOT = Path(__file__).resolve().parent.parent
CAP_MB = 300


def snapshot(engine: Engine) -> list[list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return [
            [tuple(r) for r in conn.execute(select(t.__table__).order_by(*t.__table__.primary_key))]  # type: ignore[attr-defined]
            for t in (Unit, Person, Position, AuditEntry)
        ]


def capped_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``qunmatrix ARGS`` in its own interpreter, allowed CAP_MB above its starting size."""
    return subprocess.run(
        [sys.executable, str(ROOT / "tests" / "capped_cli.py"), str(CAP_MB), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_an_input_bomb_is_refused_within_the_memory_cap_and_nothing_is_written(
    province_db: Engine, tmp_path: Path, bomb: str
) -> None:
    build, expected = BOMBS[bomb]
    folder = tmp_path / "bomb"
    folder.mkdir()
    units, persons = build(folder)
    before = snapshot(province_db)
    db = province_db.url.render_as_string(hide_password=False)

    done = capped_cli("--db", db, "import", str(units), str(persons))

    assert done.returncode == 2, done.stderr[-2000:]
    assert "未写入任何数据" in done.stderr and expected in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout
    assert snapshot(province_db) == before


def test_a_limit_is_raised_by_its_setting(
    province_db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator meets the file size limit, reads which setting raises it, raises it, and
    the same file is then read (and refused only for what is wrong in it)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUNMATRIX_CONFIG", raising=False)
    units, _ = worlds.write_roster(tmp_path, *worlds.province())
    persons = tmp_path / "big.csv"
    persons.write_text(
        ",".join(worlds.PERSON_HEADER) + "\n" + "X9,张三,office_staff,,\n" * 60_000,
        encoding="utf-8",
    )
    db = province_db.url.render_as_string(hide_password=False)
    runner = CliRunner()
    monkeypatch.setenv("QUNMATRIX_INPUT__MAX_FILE_MB", "1")
    refused = runner.invoke(app, ["--db", db, "import", str(units), str(persons)])
    assert refused.exit_code == 2
    assert "big.csv：文件大小 1.4 MB，超过上限 1 MB；确需导入请调高配置 [input] max_file_mb" in (
        refused.output
    )
    monkeypatch.setenv("QUNMATRIX_INPUT__MAX_FILE_MB", "2")
    read = runner.invoke(app, ["--db", db, "import", str(units), str(persons)])
    assert read.exit_code == 2 and "单位代码 X9 不在单位表中" in read.output


@pytest.mark.parametrize(
    ("cells", "limits", "expected"),
    [
        (
            ("P", "张三" * 40, "office_staff", "", ""),
            InputLimits(max_cell_chars=79),
            "persons.csv 第 2 行第 2 列：单元格长度 80 个字符，超过上限 79 个字符；"
            "确需导入请调高配置 [input] max_cell_chars",
        ),
        (
            ("P", "张三", "office_staff", "", "", "备注", *("x",) * 5),
            InputLimits(max_columns=10),
            "persons.csv 第 2 行：列数 11，超过上限 10 列；确需导入请调高配置 [input] max_columns",
        ),
        (
            ("P", "张\x00三", "office_staff", "", ""),
            InputLimits(),
            "persons.csv 第 2 行第 2 列：含有空字符（NUL），请删除后重新导入",
        ),
    ],
    ids=["cell-length", "columns", "nul"],
)
def test_a_row_past_a_limit_is_named(
    bp: Blueprint, tmp_path: Path, cells: worlds.Row, limits: InputLimits, expected: str
) -> None:
    units, persons = worlds.province(counties=1, schools=1)
    u, p = worlds.write_roster(tmp_path, units, [cells, *persons])
    with pytest.raises(RosterError) as err:
        read_roster(u, p, bp, limits)
    assert [str(x) for x in err.value.problems] == [expected]


def test_rows_ended_by_lone_carriage_returns_count_against_the_row_limit(
    bp: Blueprint, tmp_path: Path
) -> None:
    """A file whose records end in \\r alone has one line by its line feeds: its rows are still
    counted one by one as they are read."""
    units, _ = worlds.write_roster(tmp_path, *worlds.province(counties=1, schools=1))
    persons = tmp_path / "cr.csv"
    rows = "".join(f"P,张三{i},office_staff,,\r" for i in range(50))
    persons.write_text(",".join(worlds.PERSON_HEADER) + "\r" + rows, encoding="utf-8")
    with pytest.raises(RosterError) as err:
        read_roster(units, persons, bp, InputLimits(max_rows=40))
    assert [str(x) for x in err.value.problems] == [
        "cr.csv：行数超过上限 40 行；确需导入请调高配置 [input] max_rows"
    ]


def test_trailing_empty_columns_past_the_limit_are_not_a_problem(
    bp: Blueprint, tmp_path: Path
) -> None:
    units, persons = worlds.province(counties=1, schools=1)
    u, p = worlds.write_roster(tmp_path, units, [(*r, *("",) * 20) for r in persons])
    roster = read_roster(u, p, bp, InputLimits(max_columns=10))
    assert len(roster.positions) == len(persons)


def test_a_million_broken_rows_stop_at_the_problem_cap(bp: Blueprint, tmp_path: Path) -> None:
    units, _ = worlds.province(counties=1, schools=1)
    broken = [("X9", f"张{i}", "office_staff", "", "") for i in range(1_000)]
    u, p = worlds.write_roster(tmp_path, units, broken)
    with pytest.raises(RosterError) as err:
        read_roster(u, p, bp)
    problems = [str(x) for x in err.value.problems]
    assert len(problems) == 200
    assert problems[-1] == "错误已达 199 处，其余行未再检查；请先改正以上错误"
    assert problems[198] == "persons.csv 第 200 行 「unit_code」列：单位代码 X9 不在单位表中"


def test_a_media_file_past_a_limit_is_refused_as_a_media_file(
    province_db: Engine, bp: Blueprint, tmp_path: Path
) -> None:
    path = tmp_path / "media.csv"
    path.write_text("单位代码,公众号\nC1," + "号" * 200_000 + "\n", encoding="utf-8")
    before = snapshot(province_db)
    with pytest.raises(MediaImportError) as err:
        import_media(province_db, bp, path, requester="P", actor="cli:test")
    assert "登记表有 1 处错误，未写入任何数据" in str(err.value)
    assert "media.csv 第 2 行：单元格长度超过上限 5,000 个字符" in str(err.value)
    assert snapshot(province_db) == before


# --- mass removal --------------------------------------------------------------------------------


def test_a_persons_file_of_only_its_header_removes_nobody_unless_asked(
    province_db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator imports a persons file that lost every row but its header: refused, with
    what would have happened and the option; with the option, everyone is removed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUNMATRIX_CONFIG", raising=False)
    units, persons = worlds.province()
    u, p = worlds.write_roster(tmp_path, units, [])
    db = province_db.url.render_as_string(hide_password=False)
    before = snapshot(province_db)
    runner = CliRunner()

    refused = runner.invoke(app, ["--db", db, "import", str(u), str(p)])
    assert refused.exit_code == 2
    assert (
        f"此次导入将删除现有 {len(persons)} 个人员中的 {len(persons)} 个（超过一半），未写入任何数据。"
        "请核对名册文件是否完整；确需删除请加 --allow-mass-removal 重新导入"
    ) in refused.output
    dry = runner.invoke(app, ["--db", db, "import", "--dry-run", str(u), str(p)])
    assert dry.exit_code == 2 and "--allow-mass-removal" in dry.output
    assert snapshot(province_db) == before

    done = runner.invoke(app, ["--db", db, "import", "--allow-mass-removal", str(u), str(p)])
    assert done.exit_code == 0, done.output
    with province_db.connect() as conn:
        left = select(func.count()).select_from(Person).where(Person.removed_at.is_(None))  # type: ignore[union-attr]
        assert conn.execute(left).scalar_one() == 0
        assert [e.action for e in audit_log.entries(conn)][-1] == "roster.import"


def test_removing_half_or_less_needs_no_option(
    province_db: Engine, bp: Blueprint, tmp_path: Path
) -> None:
    units, persons = worlds.province()
    keep = persons[: (len(persons) + 1) // 2]
    report = import_roster(
        province_db, read_roster(*worlds.write_roster(tmp_path, units, keep), bp), bp
    )
    assert report.persons.removed == len(persons) - len(keep)
    with pytest.raises(MassRemoval):
        import_roster(
            province_db, read_roster(*worlds.write_roster(tmp_path, units, keep[:1]), bp), bp
        )
