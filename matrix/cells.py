"""Text that goes into a spreadsheet cell, CSV or XLSX, shown as the text it is.

Names, unit names and registered accounts come from rosters and chat. A spreadsheet program
reads a cell beginning with ``=``, ``+``, ``-`` or ``@`` as a formula (``=HYPERLINK(…)`` links
anywhere, ``=cmd|…`` ran programs in old Excel), and a leading tab or carriage return hides
such a start from a reviewer. One rule, ``formula_like``, decides for both formats:

- CSV (``csv_text``) puts an apostrophe before such text: Excel and LibreOffice then show
  the text, and so does any reader who opens the file as text;
- XLSX (``put``, the one way any workbook here gets a value into a cell) stores it as a
  string cell marked quote-prefixed, so neither program reads it as a formula, now or when
  someone edits the cell; the text itself is unchanged.

XLSX cannot hold most control characters at all (openpyxl refuses them); ``put`` drops them.
"""

from __future__ import annotations

import re
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_like(text: str) -> bool:
    """Whether a spreadsheet program would read ``text`` as (the start of) a formula.

    >>> formula_like('=HYPERLINK("http://x","y")'), formula_like("-1"), formula_like("乙1县")
    (True, True, False)
    """
    return text.startswith(FORMULA_STARTS)


def csv_text(text: str) -> str:
    """``text`` as a CSV field's content: an apostrophe before formula-like text.

    >>> csv_text("=1+1"), csv_text("1+1")
    ("'=1+1", '1+1')
    """
    return "'" + text if formula_like(text) else text


# what XML 1.0 forbids beyond openpyxl's list: one of these in a cell makes the whole file unreadable
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")


def put(cell: Any, value: Any) -> Any:
    """Write ``value`` into an openpyxl cell (a worksheet's or a write-only one) and return
    the cell: text that looks like a formula stays text."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # openpyxl is slow to import

    if isinstance(value, str):
        value = _NOT_XML.sub("", ILLEGAL_CHARACTERS_RE.sub("", value))
    cell.value = value
    if isinstance(value, str) and formula_like(value):
        cell.data_type = "s"
        cell.quotePrefix = True
    return cell
