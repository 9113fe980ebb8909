"""The blueprint: declarative rules for which groups each level leads and who belongs in them.

A blueprint is data (a TOML file), not code: the seed-002 Young Pioneers matrix ships as the
default and a 关工委 matrix ships beside it. It is validated once, when loaded, so that every later
step can trust it; an invalid file fails with the TOML path of each problem and the reason.

>>> bp = load_blueprint("young_pioneers")
>>> bp.level("县级").key
'county'
>>> [g.key for g in bp.groups_led_by("county")][:1]
['county-counselors']
>>> Selector.parse("core_squadron_counselor@children{2,3}")
Selector(role='core_squadron_counselor', scope='children', min=2, max=3)
"""

from __future__ import annotations

import re
import string
import tomllib
import unicodedata
from collections.abc import Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from matrix.errors import BlueprintError, MatrixError, Problem
from matrix.toml_errors import toml_error_text

BUILTIN_DIR = Path(__file__).parent / "blueprints"
Scope = Literal["self", "children", "descendants", "parent"]
SCOPE_LABELS: dict[str, str] = {
    "self": "本级",
    "children": "各下级单位",
    "descendants": "所有下属单位",
    "parent": "上级单位",
}
_SELECTOR = re.compile(
    r"^(?P<role>[a-z][a-z0-9_]*)@(?P<scope>self|children|descendants|parent)"
    r"(?:\{(?P<min>\d+)(?:,(?P<max>\d+))?\})?$"
)


@lru_cache(maxsize=4096)  # rosters repeat the same few level and role labels
def normalize_label(text: str) -> str:
    """Fold full-width characters and stray spaces so that '县 级' and '县级' compare equal.

    >>> normalize_label("\\u3000县　级 ")
    '县级'
    """
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Selector(_Strict):
    """Who a group rule selects: a role held at units related to the leading unit.

    ``min``/``max`` are a per-unit quota: each selected unit must supply at least ``min`` holders
    (fewer is an audit finding, not an error) and at most ``max`` are taken.
    """

    role: str
    scope: Scope
    min: int | None = None
    max: int | None = None

    @classmethod
    def parse(cls, text: str) -> Selector:
        match = _SELECTOR.match(text.strip())
        if not match:
            raise ValueError(
                f"选择器 {text!r} 格式不对，应为 岗位@范围 或 岗位@范围{{最少,最多}}，"
                "范围为 self / children / descendants / parent，例如 brigade_counselor@children"
            )
        low = int(match["min"]) if match["min"] else None
        high = int(match["max"]) if match["max"] else low
        if low is not None and high is not None and high < low:
            raise ValueError(f"选择器 {text!r} 的名额上限小于下限")
        return cls(role=match["role"], scope=match["scope"], min=low, max=high)

    def __str__(self) -> str:
        quota = ""
        if self.min is not None:
            quota = f"{{{self.min}}}" if self.min == self.max else f"{{{self.min},{self.max}}}"
        return f"{self.role}@{self.scope}{quota}"


def _selector(value: Any) -> Any:
    return Selector.parse(value) if isinstance(value, str) else value


# parsed item by item, so that an error names members[1] rather than the whole list
SelectorField = Annotated[Selector, BeforeValidator(_selector)]


class LevelSpec(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    aliases: list[str] = []


class RoleSpec(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    aliases: list[str] = []
    levels: list[str] = Field(default=[], description="levels where the role exists; empty = any")


class GroupSpec(_Strict):
    """One kind of group that every unit of ``led_by`` leads."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    led_by: str
    label: str = Field(description="short Chinese name of the kind, e.g. 大队辅导员群")
    name: str = Field(description="room name template, e.g. {unit.name}少先队大队辅导员群")
    main: bool = False
    optional: bool = Field(default=False, description="an extension group (延展群)")
    relay: bool = False
    members: list[SelectorField]
    admins: list[SelectorField]
    responsible: SelectorField | None = Field(
        default=None, description="专人负责: the person in charge"
    )

    @field_validator("name")
    @classmethod
    def _name_template(cls, value: str) -> str:
        for _, field, _, _ in string.Formatter().parse(value):
            if field not in (None, "unit.name", "unit.code", "shard"):
                raise ValueError(
                    f"群名模板中的 {{{field}}} 无法识别，只能使用 {{unit.name}}、{{unit.code}}、{{shard}}"
                )
        return value

    def selectors(self) -> list[Selector]:
        extra = [self.responsible] if self.responsible else []
        return [*self.members, *self.admins, *extra]


class MatrixSpec(_Strict):
    name: str
    max_group_size: int = Field(default=500, ge=3, le=500)
    nickname_pattern: str = Field(default=r"^\S+-\S+$", description="regex for 群昵称")
    nickname_hint: str = Field(default="单位-姓名", description="the pattern as people read it")

    @field_validator("nickname_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"不是合法的正则表达式：{exc}") from exc
        return value


class Blueprint(_Strict):
    """A validated blueprint. Lookups accept keys, Chinese labels and aliases."""

    matrix: MatrixSpec
    levels: list[LevelSpec] = Field(alias="level", min_length=2)
    roles: list[RoleSpec] = Field(alias="role", min_length=1)
    groups: list[GroupSpec] = Field(alias="group", min_length=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @cached_property
    def _level_index(self) -> dict[str, int]:
        index: dict[str, int] = {}
        for i, lvl in enumerate(self.levels):
            for name in (lvl.key, lvl.label, *lvl.aliases):
                index[normalize_label(name)] = i
        return index

    @cached_property
    def _role_index(self) -> dict[str, RoleSpec]:
        index: dict[str, RoleSpec] = {}
        for role in self.roles:
            for name in (role.key, role.label, *role.aliases):
                index[normalize_label(name)] = role
        return index

    @property
    def level_keys(self) -> list[str]:
        return [lvl.key for lvl in self.levels]

    def find_level(self, text: str) -> LevelSpec | None:
        """The level a roster writes as a key, label or alias, or None."""
        i = self._level_index.get(normalize_label(text))
        return None if i is None else self.levels[i]

    def level(self, text: str) -> LevelSpec:
        found = self.find_level(text)
        if found is None:
            raise MatrixError(f"未知层级 {text!r}", fix=f"可用层级：{self.level_names()}")
        return found

    def depth(self, level_key: str) -> int:
        return self._level_index[level_key]

    def level_names(self) -> str:
        return "、".join(f"{lvl.label}({lvl.key})" for lvl in self.levels)

    def find_role(self, text: str) -> RoleSpec | None:
        return self._role_index.get(normalize_label(text))

    def role(self, key: str) -> RoleSpec:
        found = self.find_role(key)
        if found is None:
            raise MatrixError(f"未知岗位 {key!r}", fix=f"可用岗位：{self.role_names()}")
        return found

    def role_names(self) -> str:
        return "、".join(f"{r.label}({r.key})" for r in self.roles)

    def groups_led_by(self, level_key: str) -> list[GroupSpec]:
        return [g for g in self.groups if g.led_by == level_key]

    def group(self, key: str) -> GroupSpec:
        for g in self.groups:
            if g.key == key:
                return g
        raise MatrixError(
            f"蓝图中没有群类型 {key!r}", fix="可用群类型：" + "、".join(self.group_keys())
        )

    def group_keys(self) -> list[str]:
        return [g.key for g in self.groups]

    def describe_members(self, group: GroupSpec) -> str:
        """人员构成 in Chinese, written from the selectors.

        >>> bp = load_blueprint("young_pioneers")
        >>> bp.describe_members(bp.group("county-counselors"))
        '本级办公室同志、各下级单位大队辅导员、各下级单位骨干中队辅导员（每单位2—3名）'
        """
        parts = []
        for sel in group.members:
            text = f"{SCOPE_LABELS[sel.scope]}{self.role(sel.role).label}"
            if sel.min is not None:
                span = f"{sel.min}" if sel.min == sel.max else f"{sel.min}—{sel.max}"
                text += f"（每单位{span}名）"
            parts.append(text)
        return "、".join(parts)


_PYDANTIC_REASONS = {
    "missing": "缺少必填项",
    "extra_forbidden": "不认识的字段（请检查拼写）",
    "string_type": "应为字符串",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "list_type": "应为列表",
    "too_short": "至少需要一项",
    "string_pattern_mismatch": "只能用小写字母、数字、下划线（群 key 还可用 -），且以字母开头",
    "greater_than_equal": "数值太小",
    "less_than_equal": "数值太大（微信群上限为 500 人）",
    "literal_error": "取值不在允许范围内",
    "model_type": "应为表（table）",
}


def _toml_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + part
    return path or "(整个文件)"


def _problems(exc: ValidationError, data: dict[str, Any]) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        reason = _PYDANTIC_REASONS.get(err["type"])
        if err["type"] == "value_error" or reason is None:
            reason = str(err["msg"]).removeprefix("Value error, ")
        where = _toml_path(loc)
        # name the group by its key, not only its index, so the reader can find it
        if len(loc) >= 2 and loc[0] == "group" and isinstance(loc[1], int):
            where = _group_where(data, loc[1], where.removeprefix(f"group[{loc[1]}]"))
        problems.append(Problem(where, reason))
    return problems


def _group_where(data: dict[str, Any], index: int, rest: str = "") -> str:
    """``group[3].members[1]（key = county-counselors）``: the path, and the key to search for."""
    groups = data.get("group") or []
    key = (
        groups[index].get("key")
        if index < len(groups) and isinstance(groups[index], dict)
        else None
    )
    return f"group[{index}]{rest}" + (f"（key = {key}）" if key else "")


def _consistency_problems(bp: Blueprint, data: dict[str, Any]) -> list[Problem]:
    """Checks across fields, each reported at its own TOML path."""
    problems: list[Problem] = []
    keyed: list[tuple[str, Sequence[LevelSpec | RoleSpec | GroupSpec]]] = [
        ("level", bp.levels),
        ("role", bp.roles),
        ("group", bp.groups),
    ]
    for kind, items in keyed:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.key in seen:
                problems.append(Problem(f"{kind}[{i}].key", f"{kind} 的 key {item.key!r} 重复"))
            seen.add(item.key)
    names: dict[str, str] = {}
    named: list[tuple[str, Sequence[LevelSpec | RoleSpec]]] = [
        ("level", bp.levels),
        ("role", bp.roles),
    ]
    for kind, specs in named:
        for i, spec in enumerate(specs):
            for name in (spec.key, spec.label, *spec.aliases):
                folded = normalize_label(name)
                if names.setdefault(folded, spec.key) != spec.key:
                    problems.append(
                        Problem(
                            f"{kind}[{i}]", f"名称 {name!r} 同时指向 {names[folded]} 和 {spec.key}"
                        )
                    )
    level_keys = bp.level_keys
    role_keys = {r.key for r in bp.roles}
    for i, role in enumerate(bp.roles):
        for lvl in role.levels:
            if lvl not in level_keys:
                problems.append(Problem(f"role[{i}].levels", f"{lvl!r} 不是已定义的层级"))
    for i, group in enumerate(bp.groups):
        if group.led_by not in level_keys:
            problems.append(
                Problem(
                    _group_where(data, i, ".led_by"), f"led_by {group.led_by!r} 不是已定义的层级"
                )
            )
            continue
        if not group.admins:
            problems.append(Problem(_group_where(data, i, ".admins"), "没有指定管理员"))
        depth = level_keys.index(group.led_by)
        fields = [("members", group.members), ("admins", group.admins)]
        if group.responsible:
            fields.append(("responsible", [group.responsible]))
        for field_name, selectors in fields:
            for j, sel in enumerate(selectors):
                rest = f".{field_name}" if field_name == "responsible" else f".{field_name}[{j}]"
                where = _group_where(data, i, rest)
                if sel.role not in role_keys:
                    problems.append(Problem(where, f"岗位 {sel.role!r} 未定义（{sel}）"))
                if sel.scope in ("children", "descendants") and depth == len(level_keys) - 1:
                    problems.append(Problem(where, f"由最低层级牵头，没有下级可选（{sel}）"))
                if sel.scope == "parent" and depth == 0:
                    problems.append(Problem(where, f"由最高层级牵头，没有上级可选（{sel}）"))
    return problems


def parse_blueprint(text: str, *, source: str = "") -> Blueprint:
    """Parse and validate blueprint TOML text; raise ``BlueprintError`` listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = toml_error_text(exc, source or "蓝图")
        raise BlueprintError([Problem("", f"TOML 语法错误：{where}")], source=source) from exc
    try:
        bp = Blueprint.model_validate(data)
    except ValidationError as exc:
        raise BlueprintError(_problems(exc, data), source=source) from exc
    if problems := _consistency_problems(bp, data):
        raise BlueprintError(problems, source=source)
    return bp


def builtin_blueprints() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


_SHOWN = 120  # characters of a name or path an error repeats back


def _shown(name: str) -> str:
    return name if len(name) <= _SHOWN else name[:_SHOWN] + "…"


def load_blueprint(name_or_path: str | Path) -> Blueprint:
    """Load a shipped blueprint by name (``young_pioneers``) or any blueprint file by path."""
    shown = _shown(str(name_or_path))
    try:
        path = Path(name_or_path)
        if not path.suffix and not path.exists():
            path = BUILTIN_DIR / f"{name_or_path}.toml"
        text = path.read_text(encoding="utf-8") if path.is_file() else None
    except UnicodeDecodeError as exc:
        problem = Problem(shown, "不是 UTF-8 编码的文本，请另存为 UTF-8 后重试")
        raise BlueprintError([problem], source=shown) from exc
    except OSError as exc:  # a name too long for a path, a file it may not read
        problem = Problem(shown, "读不了这个文件：请检查路径和读取权限")
        raise BlueprintError([problem], source=shown) from exc
    if text is None:
        problem = Problem(shown, "找不到蓝图文件，内置蓝图有：" + "、".join(builtin_blueprints()))
        raise BlueprintError([problem], source=shown)
    return parse_blueprint(text, source=_shown(str(path)))
