"""The file of ``#匹配``'s suggestions (and ``qunmatrix match --csv``): one CSV row per numbered
suggestion or unmatched member, with the words of ``templates/match/labels.toml``, every cell
through ``matrix.cells`` (a 群昵称 is typed by anyone: no spreadsheet formula gets in); and the
same file read back, edited, for ``qunmatrix match --import``.

The CSV carries a BOM and CRLF rows, as the summary files do, so that Excel on Windows opens the
Chinese text correctly.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.render.templates import data
from matrix.cells import csv_text
from matrix.errors import MatrixError
from matrix.provisioning.matching import Shown

LABELS = "match/labels.toml"
MAX_BYTES = 2_000_000  # a group holds 500 members: an edited file is far smaller
MAX_ROWS = 20_000
COLUMNS = (
    "group",
    "group_name",
    "number",
    "contact",
    "nickname",
    "name",
    "confidence",
    "reason",
    "person",
    "person_name",
    "unit",
    "office",
    "confirm",
)
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f\s]+')


def words() -> dict[str, Any]:
    return data(LABELS)


def rows(group_id: int, group_name: str, shown: Shown) -> Iterable[list[str]]:
    """The file's rows after the header, as text."""
    w = words()
    for r in shown.rows:
        p = r.person
        yield [
            str(group_id),
            group_name,
            "" if r.number is None else str(r.number),
            r.contact_id,
            r.nickname,
            r.name,
            w["confidence"][r.confidence],
            w["reason"].get(r.reason, r.reason),
            "" if p is None else str(p.person_id),
            "" if p is None else p.name,
            "" if p is None else p.unit_name,
            w["yes"][0] if p is not None and p.office else "",
            "",
        ]


def suggestions_csv(tables: Iterable[tuple[int, str, Shown]]) -> bytes:
    """The CSV of one or more groups' suggestions: (group id, group name, what was shown)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = words()["columns"]
    writer.writerow([header[c] for c in COLUMNS])
    for group_id, name, shown in tables:
        for row in rows(group_id, name, shown):
            writer.writerow([csv_text(cell) for cell in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def file_name(group_name: str, day: date) -> str:
    """匹配建议_乙1县少先队大队辅导员群_20261202.csv: a group name is people's text, so
    nothing in it may make a path."""
    safe = _UNSAFE.sub("_", group_name)[:40].strip("._") or "group"
    return f"{words()['file']}_{safe}_{day:%Y%m%d}.csv"


@dataclass(frozen=True)
class Pick:
    """One row of an edited file marked to confirm: bind ``contact_id`` in ``group_id`` to
    ``person_id``."""

    line: int
    group_id: int
    contact_id: str
    person_id: int


def read_picks(raw: bytes) -> list[Pick]:
    """The rows of an edited suggestions file marked 确认, parsed whole before anything is
    written; ``MatrixError`` names the first line that cannot be read."""
    if len(raw) > MAX_BYTES:
        raise MatrixError(f"文件超过 {MAX_BYTES // 1_000_000} MB", fix="请只导入匹配建议表")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MatrixError("文件不是 UTF-8 编码的 CSV", fix="请用 Excel 另存为“CSV UTF-8”") from None
    header = words()["columns"]
    yes = {y.casefold() for y in words()["yes"]}
    reader = csv.DictReader(io.StringIO(text))
    need = [header[c] for c in ("group", "contact", "person", "confirm")]
    missing = [n for n in need if n not in (reader.fieldnames or [])]
    if missing:
        raise MatrixError(
            "文件缺少列：" + "、".join(missing), fix="请用 qunmatrix match --csv 导出的表格修改"
        )
    picks = []
    for line, row in enumerate(reader, start=2):
        if line > MAX_ROWS:
            raise MatrixError(f"文件超过 {MAX_ROWS} 行", fix="请只导入匹配建议表")
        if _cell(row, header["confirm"]).casefold() not in yes:
            continue
        group, person = _cell(row, header["group"]), _cell(row, header["person"])
        contact = _cell(row, header["contact"])
        if not (_whole(group) and _whole(person) and contact) or len(contact) > 128:
            raise MatrixError(
                f"第 {line} 行标了确认，但群编号、人员编号或微信联系人不对",
                fix="人员编号请填名册人员编号（数字），或把“确认”列清空",
            )
        picks.append(Pick(line, int(group), contact, int(person)))
    return picks


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key) or ""
    text = str(value).strip()
    return text[1:] if text.startswith("'") else text  # csv_text's defusing apostrophe


def _whole(text: str) -> bool:
    """ASCII digits only (``"²".isdigit()`` is true, and ``int`` refuses it), at most 10."""
    return text.isascii() and text.isdigit() and len(text) <= 10
