"""Input bombs of issue 9, built cheaply: a zip written by hand whose members repeat one
compressed block (after a full flush a deflate stream forgets what came before, so the same
compressed bytes stand for the same text again), and CSV files written in large blocks.

Each builder writes a (units, persons) pair into ``folder``: one file is the bomb, the other a
small valid file, so that the bomb is what the import has to refuse.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests import worlds

MB = 1024 * 1024


@dataclass(frozen=True)
class Piece:
    data: bytes
    times: int = 1


def _member(pieces: list[Piece]) -> tuple[list[tuple[bytes, int]], int, int, int]:
    """(compressed segments with their repeat counts, crc, compressed size, size)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    segments: list[tuple[bytes, int]] = []
    crc = size = 0
    for piece in pieces:
        segment = comp.compress(piece.data) + comp.flush(zlib.Z_FULL_FLUSH)
        segments.append((segment, piece.times))
        for _ in range(piece.times):
            crc = zlib.crc32(piece.data, crc)
        size += len(piece.data) * piece.times
    segments.append((comp.flush(zlib.Z_FINISH), 1))
    return segments, crc, sum(len(s) * n for s, n in segments), size


def write_zip(
    path: Path, members: dict[str, list[Piece]], *, declare: dict[str, int] | None = None
) -> Path:
    """A zip of deflated members; ``declare`` states other (lying) sizes for some of them."""
    central = b""
    with path.open("wb") as fh:
        for name, pieces in members.items():
            segments, crc, csize, size = _member(pieces)
            size = (declare or {}).get(name, size)
            raw = name.encode()
            fields = (20, 0, 8, 0, 0x21, crc, csize, size, len(raw), 0)
            offset = fh.tell()
            fh.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields) + raw)
            for segment, times in segments:
                for _ in range(times):
                    fh.write(segment)
            central += (
                struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, offset) + raw
            )
        at = fh.tell()
        fh.write(central)
        count = len(members)
        fh.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), at, 0))
    return path


_NS = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL = b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
_PARTS = {
    "[Content_Types].xml": b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
    "_rels/.rels": b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": b'<?xml version="1.0" encoding="UTF-8"?><workbook '
    + _NS
    + b" "
    + _REL
    + b'><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
}


def row(*cells: str) -> bytes:
    return (
        b"<row>"
        + b"".join(b'<c t="inlineStr"><is><t>' + c.encode() + b"</t></is></c>" for c in cells)
        + b"</row>"
    )


def write_xlsx(path: Path, sheet: list[Piece], **kw: dict[str, int]) -> Path:
    """An .xlsx whose first worksheet is ``sheet`` (the <sheetData> rows)."""
    head = Piece(b'<?xml version="1.0" encoding="UTF-8"?><worksheet ' + _NS + b"><sheetData>")
    tail = Piece(b"</sheetData></worksheet>")
    members = {name: [Piece(data)] for name, data in _PARTS.items()}
    members["xl/worksheets/sheet1.xml"] = [head, *sheet, tail]
    return write_zip(path, members, **kw)


def _valid_units(folder: Path) -> Path:
    units, _ = worlds.province(counties=1, schools=1)
    return worlds.write_csv(folder / "units.csv", worlds.UNIT_HEADER, units)


def _valid_persons(folder: Path) -> Path:
    _, persons = worlds.province(counties=1, schools=1)
    return worlds.write_csv(folder / "persons.csv", worlds.PERSON_HEADER, persons)


def xlsx_3m_rows(folder: Path) -> tuple[Path, Path]:
    """A persons .xlsx of 3×10⁶ rows that zips to well under 2.1 MB and unzips to less
    than the limit: the rows must be counted."""
    block = b"<row><c><v>1</v></c></row>" * 10_000
    path = write_xlsx(
        folder / "persons.xlsx", [Piece(row(*worlds.PERSON_HEADER[:3])), Piece(block, 300)]
    )
    return _valid_units(folder), path


def xlsx_huge_cell(folder: Path, *, lie: bool = False) -> tuple[Path, Path]:
    """A units .xlsx of about 1.5 MB holding one cell of 1.5 GB; ``lie``: its zip directory
    says the sheet unzips to 1 MB."""
    start = b'<row><c t="inlineStr"><is><t>K1</t></is></c><c t="inlineStr"><is><t>'
    sheet = [
        Piece(row(*worlds.UNIT_HEADER)),
        Piece(start),
        Piece(b"a" * MB, 1500),
        Piece(b"</t></is></c></row>"),
    ]
    declare = {"xl/worksheets/sheet1.xml": MB} if lie else None
    path = write_xlsx(folder / "units.xlsx", sheet, declare=declare)
    return path, _valid_persons(folder)


def _write_blocks(path: Path, head: bytes, block: bytes, size: int) -> Path:
    with path.open("wb") as fh:
        fh.write(head)
        written = len(head)
        while written < size:
            fh.write(block)
            written += len(block)
    return path


def csv_50mb_broken_rows(folder: Path) -> tuple[Path, Path]:
    """50 MB of persons rows, every one of them wrong."""
    line = "X9,张三,舞蹈老师,1,\r\n".encode()
    head = (",".join(worlds.PERSON_HEADER) + "\r\n").encode()
    path = _write_blocks(folder / "persons.csv", head, line * 20_000, 50 * MB)
    return _valid_units(folder), path


def csv_50mb_rows(folder: Path) -> tuple[Path, Path]:
    """50 MB of near-empty rows: ten million of them."""
    head = (",".join(worlds.UNIT_HEADER) + "\n").encode()
    return _write_blocks(folder / "units.csv", head, b",,,\n" * 100_000, 50 * MB), _valid_persons(
        folder
    )


def csv_50mb_one_line(folder: Path) -> tuple[Path, Path]:
    """50 MB in one line without a line break."""
    head = (",".join(worlds.PERSON_HEADER) + "\n").encode()
    path = _write_blocks(folder / "persons.csv", head, b"x" * MB, 50 * MB)
    return _valid_units(folder), path


def csv_200k_field(folder: Path) -> tuple[Path, Path]:
    """One person's name of 200,000 characters (csv's own limit is 131,072)."""
    head = ",".join(worlds.PERSON_HEADER) + "\n"
    text = head + "P," + "张" * 200_000 + ",office_staff,13900000001,\n"
    (folder / "persons.csv").write_text(text, encoding="utf-8")
    return _valid_units(folder), folder / "persons.csv"


def xlsx_wide_row(folder: Path) -> tuple[Path, Path]:
    """A units .xlsx whose second row has a million empty cells, and a <dimension> that claims
    16,384 columns and a million rows for every row."""
    head = Piece(
        row(*worlds.UNIT_HEADER).replace(b"<row>", b'<dimension ref="A1:XFD1048576"/><row>')
    )
    sheet = [head, Piece(b"<row>"), Piece(b"<c/>" * 100_000, 10), Piece(b"</row>")]
    path = write_xlsx(folder / "units.xlsx", sheet)
    return path, _valid_persons(folder)


def xlsx_row_gap(folder: Path) -> tuple[Path, Path]:
    """A units .xlsx of three rows, the last numbered 1,048,576 and 16,384 columns wide."""
    last = b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'
    sheet = [
        Piece(row(*worlds.UNIT_HEADER)),
        Piece(row("P", "示范省", "province", "")),
        Piece(last),
    ]
    return write_xlsx(folder / "units.xlsx", sheet), _valid_persons(folder)


Builder = Callable[[Path], tuple[Path, Path]]

# each bomb, and what its refusal must say
BOMBS: dict[str, tuple[Builder, str]] = {
    "xlsx-3m-rows": (xlsx_3m_rows, "行数超过上限 2,000,000；确需导入请调高配置 [input] max_rows"),
    "xlsx-1.5gb-cell": (
        xlsx_huge_cell,
        "解压后大小 1,500.0 MB，超过上限 400 MB；确需导入请调高配置 [input] max_xlsx_uncompressed_mb",
    ),
    "xlsx-1.5gb-cell-lying-zip": (
        lambda folder: xlsx_huge_cell(folder, lie=True),
        "无法作为 Excel 文件打开：压缩数据与文件目录记录的大小或校验值不符",
    ),
    "xlsx-million-cells-in-a-row": (
        xlsx_wide_row,
        "第 2 行（按文件顺序）：列数超过上限 50 列；确需导入请调高配置 [input] max_columns",
    ),
    "xlsx-row-1048576-column-xfd": (xlsx_row_gap, "不在单位表中"),
    "csv-50mb-broken-rows": (csv_50mb_broken_rows, "错误已达 199 处，其余行未再检查"),
    "csv-50mb-10m-rows": (
        csv_50mb_rows,
        "行数超过上限 2,000,000 行；确需导入请调高配置 [input] max_rows",
    ),
    "csv-50mb-one-line": (csv_50mb_one_line, "一行的长度超过上限 250,152 个字符"),
    "csv-200k-field": (
        csv_200k_field,
        "第 2 行：单元格长度超过上限 5,000 个字符；确需导入请调高配置 [input] max_cell_chars",
    ),
}
