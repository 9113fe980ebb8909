"""The audit table: findings per unit and code, for one unit's subtree.

The audit engine (provisioning and audit, another module) produces the findings; this module
only tabulates them. It takes any records with the fields of ``qunmatrix audit --json``
(``code``, ``severity``, ``unit``, ``group``, ``person``, ``person_name``, ``fix``; ``unit`` is
a unit code),
as objects or as mappings, so the engine's own finding type plugs in unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select

from matrix.errors import MatrixError
from matrix.scope import UNIT, UnitRef, resolve_target

# what people read for a code or a severity (问题 / 严重程度 columns) is in
# templates/findings/codes.toml; an unknown code or severity is shown as it is
SEVERITY_ORDER = {"error": 0, "critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class FindingRecord:
    """One audit finding, as the audit engine reports it."""

    code: str
    severity: str
    unit: str
    group: str | None = None
    person: str | None = None
    fix: str = ""

    @classmethod
    def of(cls, item: Any) -> FindingRecord:
        """Accept a mapping (parsed JSON) or any object with the same attribute names."""
        get = item.get if isinstance(item, Mapping) else lambda k, d=None: getattr(item, k, d)
        # people read this table: the name (or the WeChat contact), never the roster id
        group = get("group")
        person = get("person_name") or get("contact") or get("person")
        return cls(
            code=str(get("code")),
            severity=str(get("severity") or "warning"),
            unit=str(get("unit")),
            group=None if group is None else str(group),
            person=None if person is None else str(person),
            fix=str(get("fix") or ""),
        )


class FindingsFileError(MatrixError):
    """A findings file that is not the audit's JSON."""


def read_findings(path: str | Path) -> list[FindingRecord]:
    """Findings from a file written by ``qunmatrix audit --json`` ({"findings": [...]})."""
    path = Path(path)
    fix = "请用 qunmatrix audit --json > findings.json 生成该文件"
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise FindingsFileError(f"找不到审计结果文件 {path}", fix=fix) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FindingsFileError(f"{path.name} 不是 JSON 文件：{exc}", fix=fix) from exc
    items = data.get("findings") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise FindingsFileError(f"{path.name} 中没有 findings 列表", fix=fix)
    records = []
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not item.get("code") or not item.get("unit"):
            raise FindingsFileError(
                f"{path.name} 第 {i} 条问题缺少 code 或 unit", where=str(path), fix=fix
            )
        records.append(FindingRecord.of(item))
    return records


@dataclass(frozen=True)
class AuditLine:
    """One finding placed in the tree."""

    unit_code: str
    unit_name: str
    code: str
    severity: str
    group: str
    person: str
    fix: str
    # a line that stands for several findings of one group (see ``summarise_hints``): how many,
    # and the first few people's names; ``person`` and ``fix`` are then the first finding's
    count: int = 1
    names: tuple[str, ...] = ()

    @property
    def cut(self) -> bool:
        """More people than ``names`` shows: the count says how many."""
        return self.count > NAMES_SHOWN


@dataclass(frozen=True)
class CodeCount:
    """How often one code occurs and in how many units."""

    code: str
    severity: str
    findings: int
    units: int


@dataclass(frozen=True)
class AuditTable:
    unit: UnitRef
    as_of: date
    by_code: list[CodeCount]
    lines: list[AuditLine]  # ordered by unit (tree order), then severity, then code
    outside: int  # findings about units not under ``unit`` (or no longer on the roster)
    findings: int = 0  # how many findings the lines stand for (hints are summarised)

    @property
    def units(self) -> int:
        return len({line.unit_code for line in self.lines})


def audit_table(
    engine: Engine,
    findings: Iterable[Any],
    *,
    requester: str,
    target: str | None = None,
    as_of: date,
) -> AuditTable:
    """Tabulate ``findings`` for ``target``'s subtree (default: the requester's unit)."""
    records = [FindingRecord.of(f) for f in findings]
    with engine.connect() as conn:
        unit = resolve_target(conn, requester, target)
        places = _places(conn, {r.unit for r in records}, unit)
    lines = []
    for r in records:
        place = places.get(r.unit)
        if place is None:
            continue
        lines.append(
            AuditLine(
                unit_code=r.unit,
                unit_name=place[0],
                code=r.code,
                severity=r.severity,
                group=r.group or "",
                person=r.person or "",
                fix=r.fix,
            )
        )
    lines.sort(key=lambda x: (places[x.unit_code][1], SEVERITY_ORDER.get(x.severity, 3), x.code))
    counts = Counter(line.code for line in lines)
    units_of: dict[str, set[str]] = {}
    severity_of: dict[str, str] = {}
    for line in lines:
        units_of.setdefault(line.code, set()).add(line.unit_code)
        severity_of.setdefault(line.code, line.severity)
    by_code = [
        CodeCount(code, severity_of[code], n, len(units_of[code])) for code, n in counts.items()
    ]
    by_code.sort(key=lambda c: (SEVERITY_ORDER.get(c.severity, 3), -c.findings, c.code))
    shown = summarise_hints(lines)
    return AuditTable(unit, as_of, by_code, shown, len(records) - len(lines), len(lines))


SUMMARISED = frozenset({"NICKNAME_FORMAT"})  # hints a province has tens of thousands of
NAMES_SHOWN = 5


def summarise_hints(lines: list[AuditLine]) -> list[AuditLine]:
    """One line per group for the codes in ``SUMMARISED`` (群昵称 hints: 22,608 of a province's
    25,250 findings), naming the first few people and the count (the templates' ``people`` and
    ``advice`` macros word it); every other finding keeps its own line, so what needs doing is
    not buried under what is only untidy."""
    grouped: dict[tuple[str, str, str], list[AuditLine]] = {}
    out: list[AuditLine | tuple[str, str, str]] = []
    for line in lines:
        if line.code not in SUMMARISED:
            out.append(line)
            continue
        key = (line.unit_code, line.group, line.code)
        if key not in grouped:
            grouped[key] = []
            out.append(key)
        grouped[key].append(line)
    return [x if isinstance(x, AuditLine) else _summary_line(grouped[x]) for x in out]


def _summary_line(same: list[AuditLine]) -> AuditLine:
    first = same[0]
    if len(same) == 1:
        return first
    names = tuple(x.person for x in same[:NAMES_SHOWN] if x.person)
    return dataclasses.replace(first, count=len(same), names=names)


def _places(conn: Connection, codes: set[str], within: UnitRef) -> dict[str, tuple[str, str]]:
    """Name and path of each code that lies under ``within``, looked up in chunks."""
    found: dict[str, tuple[str, str]] = {}
    ordered = sorted(codes)
    for i in range(0, len(ordered), 500):
        chunk = ordered[i : i + 500]
        for code, name, path in conn.execute(
            select(UNIT.c.code, UNIT.c.name, UNIT.c.path).where(
                UNIT.c.code.in_(chunk), UNIT.c.removed_at.is_(None)
            )
        ):
            if path.startswith(within.path):
                found[code] = (name, path)
    return found
