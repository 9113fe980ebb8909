"""The one exception root of the domain core.

Every error a person can cause (a bad blueprint, a broken roster row, an unknown unit) is a
``MatrixError`` carrying a Chinese message, where it happened and how to fix it. The CLI and the
bot print these as they are; anything else is a bug and is logged, never shown raw.
"""

from __future__ import annotations

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
        shown = [f"  - {p}" for p in self.problems[:200]]
        if len(self.problems) > 200:
            shown.append(f"  …… 另有 {len(self.problems) - 200} 处错误未列出")
        return "\n".join([super().__str__(), *shown])


class RosterError(ProblemsError):
    """The roster files do not validate; nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(
            problems,
            f"名册有 {len(problems)} 处错误，未写入任何数据",
            fix="请按提示逐条修改名册文件后重新导入",
        )
