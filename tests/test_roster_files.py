"""Roster files as offices really save them (issue 13): tab-separated, with the wrong
separator, with a phone Excel turned into 1.38E+10, or with a row in another encoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from matrix.blueprint import Blueprint
from matrix.errors import RosterError
from matrix.roster import read_roster
from tests import worlds


def write(path: Path, header: worlds.Row, rows: list[worlds.Row], sep: str, enc: str = "utf-8"):
    lines = [sep.join(header), *(sep.join(r) for r in rows)]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(enc))
    return path


def problems(units: Path, persons: Path, bp: Blueprint) -> list[str]:
    with pytest.raises(RosterError) as err:
        read_roster(units, persons, bp)
    return [str(p) for p in err.value.problems]


@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".txt"])
def test_tab_separated_rosters_are_read(bp: Blueprint, tmp_path: Path, suffix: str) -> None:
    units, persons = worlds.province(counties=2)
    u = write(tmp_path / f"units{suffix}", worlds.UNIT_HEADER_ZH, units, "\t")
    p = write(tmp_path / f"persons{suffix}", worlds.PERSON_HEADER_ZH, persons, "\t")
    roster = read_roster(u, p, bp)
    assert len(roster.units) == len(units)
    assert len(roster.positions) == len(persons)


def test_a_tsv_with_commas_in_names_keeps_them(bp: Blueprint, tmp_path: Path) -> None:
    units, persons = worlds.province(counties=1)
    units[1] = ("C1", "甲市,东区", "city", "P")
    u = write(tmp_path / "units.tsv", worlds.UNIT_HEADER_ZH, units, "\t")
    p = write(tmp_path / "persons.tsv", worlds.PERSON_HEADER_ZH, persons, "\t")
    assert read_roster(u, p, bp).units["C1"].name == "甲市,东区"


@pytest.mark.parametrize(("sep", "word"), [(";", "分号"), ("|", "竖线")])
def test_a_wrong_separator_is_named(bp: Blueprint, tmp_path: Path, sep: str, word: str) -> None:
    units, persons = worlds.province(counties=1)
    u = write(tmp_path / "units.csv", worlds.UNIT_HEADER_ZH, units, sep)
    p = worlds.write_csv(tmp_path / "persons.csv", worlds.PERSON_HEADER_ZH, persons)
    (problem,) = problems(u, p, bp)
    assert problem.startswith("units.csv 第 1 行"), problem
    assert f"看起来是用{word}分隔的" in problem, problem
    assert "逗号" in problem, problem


def test_a_phone_excel_turned_into_scientific_notation_is_explained(
    bp: Blueprint, tmp_path: Path
) -> None:
    units, persons = worlds.province(counties=1)
    persons[3] = (*persons[3][:3], "1.38E+10", persons[3][4])
    u, p = worlds.write_roster(tmp_path, units, persons)
    (problem,) = problems(u, p, bp)
    assert problem.startswith("persons.csv 第 5 行 「phone」列"), problem
    assert "科学计数法" in problem and "文本" in problem, problem


def test_a_gbk_roster_is_accepted(bp: Blueprint, tmp_path: Path) -> None:
    units, persons = worlds.province(counties=1)
    u, p = worlds.write_roster(tmp_path, units, persons, encoding="gbk", chinese=True)
    assert read_roster(u, p, bp).units["K1"].name == "乙1县"


def test_a_row_in_another_encoding_is_named(bp: Blueprint, tmp_path: Path) -> None:
    units, persons = worlds.province(counties=2)
    u = worlds.write_csv(tmp_path / "units.csv", worlds.UNIT_HEADER_ZH, units)
    # a row pasted in from a GBK file: the rest of the file is UTF-8
    data = u.read_bytes().split(b"\r\n")
    data[4] = "K1S1,乙1县第1小学,学校,K1".encode("gbk")
    u.write_bytes(b"\r\n".join(data))
    p = worlds.write_csv(tmp_path / "persons.csv", worlds.PERSON_HEADER_ZH, persons)
    (problem,) = problems(u, p, bp)
    assert problem.startswith("units.csv 第 5 行"), problem
    assert "UTF-8" in problem, problem


def test_an_unreadable_encoding_names_the_first_bad_row(bp: Blueprint, tmp_path: Path) -> None:
    u = tmp_path / "units.csv"
    u.write_bytes(b"code,name,level,parent_code\r\nP,Sheng,province,\r\nC1,\xff\xfe,city,P\r\n")
    p = worlds.write_csv(tmp_path / "persons.csv", worlds.PERSON_HEADER_ZH, [])
    (problem,) = problems(u, p, bp)
    assert problem.startswith("units.csv 第 3 行"), problem
    assert "无法识别文件编码" in problem, problem
