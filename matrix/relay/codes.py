"""Short ids people type: notices ``T<id>`` (通知), reports ``R<id>`` (上报).

>>> notice_code(12), parse_code("t12", "T"), parse_code("１２", "T"), parse_code("R3", "T")
('T12', 12, 12, None)
"""

from __future__ import annotations

import re
import unicodedata

# ASCII digits only (after NFKC, full-width ones are): \d would take ٣ for 3
_CODE = re.compile(r"^([A-Za-z]?)([0-9]{1,9})$")


def notice_code(notice_id: int) -> str:
    """What people type for a notice."""
    return f"T{notice_id}"


def report_code(report_id: int) -> str:
    """What people type for a report."""
    return f"R{report_id}"


def parse_code(text: str, prefix: str) -> int | None:
    """The id in ``T12`` / ``t12`` / ``12`` (full-width digits too), or None if it is not one
    of ``prefix``'s codes."""
    match = _CODE.match(unicodedata.normalize("NFKC", text).strip())
    if not match or (match[1] and match[1].upper() != prefix):
        return None
    return int(match[2])
