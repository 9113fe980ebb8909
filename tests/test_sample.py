"""Sample rosters: real division names and codes, uneven generated schools, importable as is."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine

from matrix.blueprint import Blueprint
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
    schools = Counter(u["上级代码"] for u in units if u["层级"] == "school")
    assert min(schools.values()) <= 10 and max(schools.values()) >= 150  # a handful to hundreds
    cores = Counter(p["单位代码"] for p in persons if p["岗位"] == "core_squadron_counselor")
    assert {1, 2, 3, 4} <= set(cores.values())  # some schools fall short of 2–3
    assert any(not p["微信号"] for p in persons)
    assert any(p["岗位"] == "office_staff" for p in persons)


def test_same_seed_same_sample(tmp_path: Path) -> None:
    a = generate("county", tmp_path / "a", seed=5)
    b = generate("county", tmp_path / "b", seed=5)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_unknown_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MatrixError, match="不是省级区划代码"):
        generate("province", tmp_path, root="230102")
