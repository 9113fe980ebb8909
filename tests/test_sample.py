"""Sample rosters: real division names and codes, uneven generated schools, importable as is."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.cli import app
from matrix.blueprint import Blueprint, load_blueprint
from matrix.errors import MatrixError
from matrix.roster import import_roster, read_roster
from matrix.sample import divisions, generate


def test_divisions_are_the_real_country() -> None:
    levels = Counter(d.level for d in divisions())
    assert levels["province"] == 31
    assert 330 <= levels["city"] <= 350
    assert 2_800 <= levels["county"] <= 3_000
    names = {d.code: d.name for d in divisions()}
    assert names["230000"] == "黑龙江省" and names["230102"] == "道里区"


def test_county_sample_imports_cleanly(engine: Engine, bp: Blueprint, tmp_path: Path) -> None:
    units, persons = generate("county", tmp_path, seed=3)
    report = import_roster(engine, read_roster(units, persons, bp), bp)
    assert report.units.added >= 4
    assert report.persons.added > report.units.added


def test_province_sample_has_a_realistic_spread(tmp_path: Path) -> None:
    units_path, persons_path = generate("province", tmp_path, seed=7)
    with units_path.open(encoding="utf-8-sig") as fh:
        units = list(csv.DictReader(fh))
    with persons_path.open(encoding="utf-8-sig") as fh:
        persons = list(csv.DictReader(fh))
    schools = Counter(u["上级代码"] for u in units if u["层级"] == "学校")
    assert min(schools.values()) <= 10 and max(schools.values()) >= 150  # a handful to hundreds
    cores = Counter(p["单位代码"] for p in persons if p["岗位"] == "骨干中队辅导员")
    assert {1, 2, 3, 4} <= set(cores.values())  # some schools fall short of 2–3
    assert any(not p["微信号"] for p in persons)
    assert any(p["岗位"] == "办公室同志" for p in persons)
    # Chinese headers, Chinese levels and roles: no English key under a Chinese header
    assert {u["层级"] for u in units} == {"省", "市", "县", "学校"}


def test_same_seed_same_sample(tmp_path: Path) -> None:
    a = generate("county", tmp_path / "a", seed=5)
    b = generate("county", tmp_path / "b", seed=5)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_unknown_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MatrixError, match="不是省级区划代码"):
        generate("province", tmp_path, root="230102")


def test_a_blueprints_sample_fills_its_own_levels_and_groups(tmp_path: Path) -> None:
    gw = load_blueprint("guangongwei")
    units_path, persons_path = generate("province", tmp_path, seed=2, blueprint=gw)
    with units_path.open(encoding="utf-8-sig") as fh:
        levels = Counter(u["层级"] for u in csv.DictReader(fh))
    assert set(levels) == {"省", "市", "县"}  # no schools: the 关工委 matrix ends at the county
    with persons_path.open(encoding="utf-8-sig") as fh:
        roles = {p["岗位"] for p in csv.DictReader(fh)}
    # every role a guangongwei group selects is on the roster
    assert {"关工委办公室工作人员", "关工委主任", "五老骨干", "成员部门联络员"} <= roles


def test_national_sample_of_a_province_blueprint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MatrixError, match="没有全国这一层级") as err:
        generate("national", tmp_path, blueprint=load_blueprint("guangongwei"))
    assert "province" in err.value.fix


def test_cli_sample_then_import_with_the_same_blueprint(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    runner = CliRunner()
    base = ["--db", db, "--blueprint", "guangongwei"]
    assert runner.invoke(app, [*base, "init"]).exit_code == 0
    out = runner.invoke(app, [*base, "sample", "--scale", "province", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "下一步：qunmatrix --blueprint guangongwei import" in out.output
    units, persons = tmp_path / "units.csv", tmp_path / "persons.csv"
    result = runner.invoke(app, [*base, "import", str(units), str(persons)])
    assert result.exit_code == 0, result.output
    assert "名册已导入" in result.output


def test_identical_errors_are_one_line_with_a_count(tmp_path: Path) -> None:
    """A Young Pioneers sample imported under the 关工委 blueprint: every school row has the same
    unknown level; the operator reads that once, with how many rows and where."""
    db = f"sqlite:///{tmp_path / 'g.db'}"
    runner = CliRunner()
    units, persons = generate("county", tmp_path, seed=3)
    runner.invoke(app, ["--db", db, "init"])
    result = runner.invoke(
        app, ["--db", db, "--blueprint", "guangongwei", "import", str(units), str(persons)]
    )
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if "'学校' 无法识别" in ln]
    assert len(lines) == 1
    assert "units.csv 第 3 行 「层级」列、units.csv 第 4 行" in lines[0]
    assert re.search(r"（共 \d+ 处：", lines[0])
