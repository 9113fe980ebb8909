"""Small worlds for tests, each built in one line: a province with three counties, say.

Rows are plain tuples so a test can break one on purpose before writing the files.
"""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook

UNIT_HEADER = ("code", "name", "level", "parent_code")
PERSON_HEADER = ("unit_code", "name", "role", "phone", "wechat_id")
UNIT_HEADER_ZH = ("单位代码", "单位名称", "层级", "上级代码")
PERSON_HEADER_ZH = ("单位代码", "姓名", "岗位", "手机", "微信号")

Row = tuple[str, ...]


def province(counties: int = 3, schools: int = 2, cores: int = 2) -> tuple[list[Row], list[Row]]:
    """One province (code P) → one city (C1) → ``counties`` counties (K1…) → ``schools`` each.

    Everyone has a WeChat id ``wx<unit>n<seq>`` and a phone; offices have two staff.
    """
    units: list[Row] = [("P", "示范省", "province", ""), ("C1", "甲市", "city", "P")]
    persons: list[Row] = []
    n = 0

    def person(unit: str, role: str, name: str) -> None:
        nonlocal n
        n += 1
        persons.append((unit, name, role, f"139{n:08d}", f"wx{unit}n{n:03d}"))

    for unit, roles in (
        ("P", ("office_staff", "office_staff", "youth_dept_head")),
        ("C1", ("office_staff", "office_staff", "youth_dept_head", "chief_counselor")),
    ):
        for i, role in enumerate(roles):
            person(unit, role, f"{unit}{role}{i}")
    for k in range(1, counties + 1):
        county = f"K{k}"
        units.append((county, f"乙{k}县", "county", "C1"))
        for role in ("office_staff", "office_staff", "league_staff", "chief_counselor"):
            person(county, role, f"{county}{role}")
        for s in range(1, schools + 1):
            school = f"{county}S{s}"
            units.append((school, f"乙{k}县第{s}小学", "school", county))
            person(school, "brigade_counselor", f"{school}大辅")
            for c in range(cores):
                person(school, "core_squadron_counselor", f"{school}中辅{c}")
    return units, persons


def write_csv(path: Path, header: Row, rows: list[Row], *, encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, header: Row, rows: list[Row]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


def write_roster(
    folder: Path,
    units: list[Row],
    persons: list[Row],
    *,
    fmt: str = "csv",
    encoding: str = "utf-8",
    chinese: bool = False,
) -> tuple[Path, Path]:
    """Write both roster files; returns (units, persons) paths."""
    uh, ph = (UNIT_HEADER_ZH, PERSON_HEADER_ZH) if chinese else (UNIT_HEADER, PERSON_HEADER)
    if fmt == "xlsx":
        return (
            write_xlsx(folder / "units.xlsx", uh, units),
            write_xlsx(folder / "persons.xlsx", ph, persons),
        )
    return (
        write_csv(folder / "units.csv", uh, units, encoding=encoding),
        write_csv(folder / "persons.csv", ph, persons, encoding=encoding),
    )
