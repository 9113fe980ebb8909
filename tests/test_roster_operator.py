"""What an operator reads when a roster is re-imported or refused (issue 13): the dry-run
report names people and says what changed; the errors say which row and what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot.render.templates import render
from matrix.blueprint import Blueprint
from matrix.errors import RosterError
from matrix.roster import import_roster, read_roster
from tests import worlds


def load(tmp_path: Path, bp: Blueprint, units: list[worlds.Row], persons: list[worlds.Row]):
    u, p = worlds.write_roster(tmp_path, units, persons)
    return read_roster(u, p, bp)


def problems_of(tmp_path: Path, bp: Blueprint, units: Path, persons: Path) -> list[str]:
    with pytest.raises(RosterError) as err:
        read_roster(units, persons, bp)
    return [str(p) for p in err.value.problems]


# --- defect 7: the dry-run report -----------------------------------------------------------


def test_dry_run_names_removed_posts_and_says_what_changed(
    province_db: Engine, bp: Blueprint, tmp_path: Path
) -> None:
    units, persons = worlds.province()
    units[1] = ("C1", "甲市（新）", "city", "P")  # renamed
    persons[0] = (*persons[0][:3], "13600000000", persons[0][4])  # a new phone
    moved = persons.index(next(p for p in persons if p[2] == "brigade_counselor"))
    unit, name, _, *rest = persons[moved]
    persons[moved] = (unit, name, "core_squadron_counselor", *rest)  # a new post
    report = import_roster(province_db, load(tmp_path, bp, units, persons), bp, dry_run=True)
    text = render("cli/import_report.txt.j2", report=report)
    old_phone = worlds.province()[1][0][3]
    # what changed, field by field
    assert f"手机 {old_phone} → 13600000000" in text, text
    assert "名称 甲市 → 甲市（新）" in text, text
    # a removed post by person, unit and role, never by internal id or code
    name = persons[moved][1]
    assert f"{name}（乙1县第1小学 大队辅导员）" in text, text
    assert "@" not in text and "K1S1:" not in text, text


def test_removed_person_post_is_named(province_db: Engine, bp: Blueprint, tmp_path: Path) -> None:
    units, persons = worlds.province()
    gone = persons.pop(5)
    report = import_roster(province_db, load(tmp_path, bp, units, persons), bp, dry_run=True)
    text = render("cli/import_report.txt.j2", report=report)
    assert f"{gone[1]}（甲市 " in text, text


def test_changed_examples_stay_bounded(province_db: Engine, bp: Blueprint, tmp_path: Path) -> None:
    units, persons = worlds.province(counties=4)
    persons = [(*p[:3], f"137{i:08d}", p[4]) for i, p in enumerate(persons)]
    report = import_roster(province_db, load(tmp_path, bp, units, persons), bp, dry_run=True)
    assert report.persons.changed > 20
    assert len(report.persons.examples["changed"]) == 10
    assert all("→" in e for e in report.persons.examples["changed"])
    text = render("cli/import_report.txt.j2", report=report)
    assert f"共 {report.persons.changed} 项" in text


# --- defect 12: the level-order error ---------------------------------------------------------


def test_level_order_error_names_the_unit_and_the_fix(bp: Blueprint, tmp_path: Path) -> None:
    units, persons = worlds.province()
    units[2] = ("K1", "越级县", "county", "P")
    u, p = worlds.write_roster(tmp_path, units, persons)
    (problem,) = [t for t in problems_of(tmp_path, bp, u, p) if "层级顺序" in t]
    assert problem.startswith("units.csv 第 4 行 「parent_code」列"), problem
    assert "越级县（K1）是县级" in problem, problem
    assert "示范省（P）是省级" in problem, problem
    assert "上级代码" in problem and "改为" in problem, problem


def test_top_level_unit_with_a_parent_says_to_clear_it(bp: Blueprint, tmp_path: Path) -> None:
    units, persons = worlds.province()
    units.append(("N2", "全国总部", bp.levels[0].key, "C1"))
    u, p = worlds.write_roster(tmp_path, units, persons)
    (problem,) = [t for t in problems_of(tmp_path, bp, u, p) if "层级顺序" in t]
    assert f"全国总部（N2）是{bp.levels[0].label}级" in problem and "清空" in problem, problem
