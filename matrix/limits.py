"""How big an input file may be before it is read: roster and media files come from people, and
a hostile or broken file must be refused cheaply, not parsed into memory first.

The values come from the ``[input]`` settings (``bot.config.InputSettings``) as plain numbers;
every refusal names the limit and the setting that raises it.

>>> InputLimits().max_rows
2000000
>>> too_big("u.csv", "文件大小", "120.0 MB", "100 MB", "max_file_mb").message
'文件大小 120.0 MB，超过上限 100 MB；确需导入请调高配置 [input] max_file_mb'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from matrix.errors import Problem

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class InputLimits:
    """Bounds checked before and while a file is read (defaults fit a national roster:
    746,000 persons, 48 MB of CSV, with room to spare)."""

    max_file_mb: int = 100
    max_xlsx_uncompressed_mb: int = 400
    max_rows: int = 2_000_000
    max_columns: int = 50
    max_cell_chars: int = 5_000

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb * MB

    @property
    def max_uncompressed_bytes(self) -> int:
        return self.max_xlsx_uncompressed_mb * MB

    @property
    def max_record_chars(self) -> int:
        """Most characters one CSV record may span (quoted fields may hold line breaks)."""
        return self.max_columns * (self.max_cell_chars + 3) + 2


def too_big(where: str, what: str, found: str | None, limit: str, setting: str) -> Problem:
    """The problem of one exceeded limit, naming the setting that raises it; ``found`` is the
    size found, when it is known."""
    size = f"{what} {found}，超过上限" if found else f"{what}超过上限"
    return Problem(where, f"{size} {limit}；确需导入请调高配置 [input] {setting}")


def megabytes(size: int) -> str:
    return f"{size / MB:,.1f} MB"


MAX_PROBLEMS = 199  # with the note below, the 200 lines a ProblemsError shows


class CappedProblems(list[Problem]):
    """The problems of one import, at most ``MAX_PROBLEMS``: a file of a million broken rows
    is refused after the first two hundred, not after a million messages held in memory."""

    def __init__(self, error: Callable[[list[Problem]], Exception]) -> None:
        super().__init__()
        self.error = error

    def append(self, problem: Problem) -> None:
        super().append(problem)
        if len(self) >= MAX_PROBLEMS:
            note = Problem("", f"错误已达 {MAX_PROBLEMS} 处，其余行未再检查；请先改正以上错误")
            raise self.error([*self, note])
