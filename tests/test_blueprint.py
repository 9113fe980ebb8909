"""Blueprints: the shipped ones load; an invalid one fails with the TOML path and a Chinese reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from matrix.blueprint import Selector, builtin_blueprints, load_blueprint, parse_blueprint
from matrix.errors import BlueprintError

MINIMAL = """
[matrix]
name = "测试矩阵"

[[level]]
key = "city"
label = "市"

[[level]]
key = "county"
label = "县"

[[role]]
key = "office_staff"
label = "办公室同志"

[[role]]
key = "clerk"
label = "联络员"

[[group]]
key = "county-clerks"
led_by = "city"
label = "联络员群"
name = "{unit.name}联络员群{shard}"
members = ["office_staff@self", "clerk@children"]
admins = ["office_staff@self"]
"""


def test_both_shipped_blueprints_load() -> None:
    assert builtin_blueprints() == ["guangongwei", "young_pioneers"]
    yp = load_blueprint("young_pioneers")
    assert yp.level_keys == ["national", "province", "city", "county", "school"]
    main = {g.led_by: g.key for g in yp.groups if g.main}
    assert main == {
        "national": "province-youth-heads",
        "province": "city-youth-heads",
        "city": "county-league-leaders",
        "county": "county-counselors",
    }
    assert all(g.relay for g in yp.groups if g.main)
    ggw = load_blueprint("guangongwei")
    assert ggw.level_keys == ["province", "city", "county"]
    county_groups = {g.label for g in ggw.groups_led_by("county")}
    assert {"关工工作群", "五老工作群", "关工宣传报道通讯员群"} <= county_groups


def test_seed_002_extension_groups_are_all_there() -> None:
    labels = {g.label for g in load_blueprint("young_pioneers").groups}
    for name in (
        "省级少工委负责同志群",
        "省级少先队总辅导员群",
        "队情快递群",
        "全国少工委委员群",
        "省级少工委委员群",
        "地市级少工委负责同志群",
        "地市少先队总辅导员群",
        "少先队名师工作室群",
        "地市级少工委委员群",
        "区县级少工委委员群",
        "中小学校分管校长、书记群",
    ):
        assert name in labels


def test_levels_and_roles_accept_chinese_labels_and_aliases() -> None:
    bp = load_blueprint("young_pioneers")
    for text, key in (
        ("省级", "province"),
        ("地市", "city"),
        ("市级", "city"),
        ("区县", "county"),
        ("县级", "county"),
        ("学校", "school"),
        ("县 级", "county"),
        ("ｃｏｕｎｔｙ", "county"),
    ):
        found = bp.find_level(text)
        assert found is not None and found.key == key, text
    assert bp.role("大队辅导员").key == "brigade_counselor"
    assert bp.find_role("校长") is not None
    assert bp.find_level("乡镇") is None


def test_selector_grammar() -> None:
    assert Selector.parse("core_squadron_counselor@children{2,3}") == Selector(
        role="core_squadron_counselor", scope="children", min=2, max=3
    )
    assert Selector.parse("office_staff@self").min is None
    assert str(Selector.parse("clerk@descendants{2}")) == "clerk@descendants{2}"
    with pytest.raises(ValueError, match="格式不对"):
        Selector.parse("office_staff@everyone")


def test_minimal_blueprint_parses() -> None:
    bp = parse_blueprint(MINIMAL)
    assert bp.describe_members(bp.group("county-clerks")) == "本级办公室同志、各下级单位联络员"


@pytest.mark.parametrize(
    ("edit", "where", "reason"),
    [
        (
            ("clerk@children", "nobody@children"),
            "group[0].members[1]（key = county-clerks）",
            "岗位 'nobody' 未定义",
        ),
        (
            ("clerk@children", "clerk@everywhere"),
            "group[0].members[1]（key = county-clerks）",
            "格式不对",
        ),
        (
            ('led_by = "city"', 'led_by = "town"'),
            "group[0].led_by（key = county-clerks）",
            "不是已定义的层级",
        ),
        (('label = "联络员群"\n', ""), "group[0].label（key = county-clerks）", "缺少必填项"),
        (
            ('name = "测试矩阵"', 'name = "测试矩阵"\nmax_size = 3'),
            "matrix.max_size",
            "不认识的字段",
        ),
        (
            ('name = "测试矩阵"', 'name = "测试矩阵"\nmax_group_size = 800'),
            "matrix.max_group_size",
            "数值太大",
        ),
        (
            ('key = "clerk"', 'key = "office_staff"'),
            "role[1].key",
            "role 的 key 'office_staff' 重复",
        ),
        (
            ("{unit.name}联络员群", "{unit.title}联络员群"),
            "group[0].name（key = county-clerks）",
            "{unit.title} 无法识别",
        ),
        (
            ('admins = ["office_staff@self"]', "admins = []"),
            "group[0].admins（key = county-clerks）",
            "没有指定管理员",
        ),
        (
            ('led_by = "city"', 'led_by = "county"'),
            "group[0].members[1]（key = county-clerks）",
            "由最低层级牵头",
        ),
        (
            ('key = "county-clerks"', 'key = "County Clerks"'),
            "group[0].key（key = County Clerks）",
            "只能用小写字母",
        ),
    ],
)
def test_invalid_blueprint_names_the_toml_path_and_reason(
    edit: tuple[str, str], where: str, reason: str
) -> None:
    text = MINIMAL.replace(*edit, 1)
    assert text != MINIMAL
    with pytest.raises(BlueprintError) as err:
        parse_blueprint(text, source="my.toml")
    message = str(err.value)
    assert "蓝图 my.toml" in message
    assert any(p.where == where and reason in p.message for p in err.value.problems), message


def test_toml_syntax_error_is_reported_in_chinese() -> None:
    with pytest.raises(BlueprintError, match="TOML 语法错误"):
        parse_blueprint("[matrix\nname = 1")


def test_unknown_blueprint_name_lists_the_shipped_ones() -> None:
    with pytest.raises(BlueprintError, match="内置蓝图有：guangongwei、young_pioneers"):
        load_blueprint("no_such_matrix")


def test_a_name_too_long_for_a_path_is_refused_and_repeated_only_in_part() -> None:
    with pytest.raises(BlueprintError, match="读不了这个文件") as err:
        load_blueprint("=HYPERLINK(1)" * 500)
    assert len(str(err.value)) < 400


def test_a_blueprint_file_not_in_utf8_says_so(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes("name = '少先队'".encode("gbk"))
    with pytest.raises(BlueprintError, match="不是 UTF-8 编码"):
        load_blueprint(path)
