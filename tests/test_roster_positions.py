"""Positions are numbered per unit and role in the order of the persons file."""

from __future__ import annotations

from pathlib import Path

from matrix.blueprint import Blueprint
from matrix.roster import clean_name, read_roster
from tests import worlds


def test_positions_are_numbered_per_unit_and_role_in_file_order(
    bp: Blueprint, tmp_path: Path
) -> None:
    units, _ = worlds.province(counties=1, schools=1)
    persons: list[worlds.Row] = [
        ("K1", "甲", "office_staff", "13900000001", ""),
        ("P", "乙", "office_staff", "13900000002", ""),
        ("K1", "丙", "office_staff", "13900000003", ""),
        ("P", "丁", "office_staff", "13900000004", ""),
        ("K1", "戊", "office_staff", "13900000005", ""),
    ]
    u, p = worlds.write_roster(tmp_path, units, persons)
    numbered = [(unit, seq) for _, unit, _, seq in read_roster(u, p, bp).positions]
    assert numbered == [("K1", 1), ("P", 1), ("K1", 2), ("P", 2), ("K1", 3)]


def test_a_name_without_whitespace_is_kept_as_it_is() -> None:
    name = "欧阳\u00b7娜娜"
    assert clean_name(name) is name
    assert clean_name("张\t三\u00a0") == "张 三"
