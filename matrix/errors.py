"""The one exception root of the domain core.

Every error a person can cause (a bad blueprint, a broken roster row, an unknown unit) is a
``MatrixError`` carrying a Chinese message, where it happened and how to fix it. The CLI and the
bot print these as they are; anything else is a bug and is logged, never shown raw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class MatrixError(Exception):
    """An expected, user-caused error with a Chinese message and a fix."""

    def __init__(self, message: str, *, where: str = "", fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.fix = fix

    def __str__(self) -> str:
        text = f"{self.where}：{self.message}" if self.where else self.message
        return f"{text}。{self.fix}" if self.fix else text


class BlueprintError(MatrixError):
    """The blueprint file cannot be read or does not validate."""

    def __init__(self, problems: list[Problem], *, source: str = "") -> None:
        self.problems = problems
        self.source = source
        head = f"蓝图 {source} 有 {len(problems)} 处错误" if source else "蓝图有误"
        super().__init__(head, fix="请按提示修改蓝图文件后重试")

    def __str__(self) -> str:
        return "\n".join([super().__str__(), *(f"  - {p}" for p in self.problems)])


class UnknownUnit(MatrixError):
    """A unit code that is not (or no longer) in the roster."""

    def __init__(self, code: str) -> None:
        super().__init__(
            f"找不到单位代码 {code}",
            fix="请检查代码，可用 `qunmatrix tree` 查看现有单位",
        )
        self.code = code


class TreeError(MatrixError):
    """The units do not form a single tree (an arborescence)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an input file: where (file, row, column or TOML path) and why."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}：{self.message}" if self.where else self.message


class ProblemsError(MatrixError):
    """An input file with problems, each listed with where and why; nothing was written."""

    def __init__(self, problems: list[Problem], message: str, *, fix: str) -> None:
        self.problems = problems
        super().__init__(message, fix=fix)

    def __str__(self) -> str:
        return "\n".join([super().__str__(), *grouped_problems(self.problems)])


def grouped_problems(problems: list[Problem], *, limit: int = 200, places: int = 5) -> list[str]:
    """One line per kind of mistake: a reason that recurs names its first few places and a count,
    so that 58,683 copies of one mistake read as one line, not as 200 identical ones. Reasons
    that differ only in a code or number (``单位代码 2301020001 不在单位表中``) are one kind.

    >>> grouped_problems([Problem(f"u.csv 第 {n} 行", "层级不对") for n in (2, 3, 4)], places=2)
    ['  - 层级不对（共 3 处：u.csv 第 2 行、u.csv 第 3 行 等）']
    >>> grouped_problems([Problem("p 第 2 行", "单位 1234 缺"), Problem("p 第 3 行", "单位 5678 缺")])
    ['  - 单位 1234 缺（同类共 2 处：p 第 2 行、p 第 3 行）']
    """
    by_kind: dict[str, list[Problem]] = {}
    for p in problems:
        by_kind.setdefault(_NUMBERS.sub("#", p.message), []).append(p)
    lines = []
    for same in list(by_kind.values())[:limit]:
        first = same[0]
        if len(same) == 1:
            lines.append(f"  - {first}")
            continue
        alike = "共" if all(p.message == first.message for p in same) else "同类共"
        shown = "、".join(p.where for p in same[:places] if p.where)
        more = " 等" if len(same) > places else ""
        lines.append(f"  - {first.message}（{alike} {len(same):,} 处：{shown}{more}）")
    if len(by_kind) > limit:
        lines.append(f"  …… 另有 {len(by_kind) - limit} 种错误未列出")
    return lines


_NUMBERS = re.compile(r"\d{4,}")


class RosterError(ProblemsError):
    """The roster files do not validate; nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(
            problems,
            f"名册有 {len(problems)} 处错误，未写入任何数据",
            fix="请按提示逐条修改名册文件后重新导入",
        )
