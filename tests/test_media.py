"""The media-account registry and its table (seed 000 附表): #登记, file import, missing rows."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from matrix import audit_log
from matrix.media import (
    MediaError,
    MediaImportError,
    Registration,
    import_media,
    media_table,
    parse_registration,
    register_media,
)
from matrix.models import MediaAccount
from matrix.summary import OutOfScope
from tests import worlds

MAY_1 = date(2026, 5, 1)


def say(engine, bp, text, *, unit="K1"):
    """What the chat command ``#登记 <text>`` sent in unit ``unit``'s group does."""
    return register_media(
        engine, bp, parse_registration(text), requester=unit, actor=f"wxid_{unit}"
    )


def rows(engine):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(MediaAccount.__table__)).scalar()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("公众号 乙1县少先队", Registration("mp", "乙1县少先队")),
        ("微信公众号：乙1县 少先队", Registration("mp", "乙1县 少先队")),
        ("K1 快手: 乙1县", Registration("kuaishou", "乙1县", unit="K1")),
        ("视频号 无", Registration("channels", "")),
        ("无 视频号", Registration("channels", "")),
        ("K1 暂无 抖音", Registration("douyin", "", unit="K1")),
        (
            "网站 https://www.example.gov.cn/",
            Registration("website", "https://www.example.gov.cn/"),
        ),
        ("K2 抖音 乙2县红领巾", Registration("douyin", "乙2县红领巾", unit="K2")),
        ("微博 某号", None),
    ],
)
def test_parse_registration(text, want):
    if want is None:
        with pytest.raises(MediaError, match="不认识登记类型"):
            parse_registration(text)
    else:
        assert parse_registration(text) == want


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "请写明要登记的类型和名称"),
        ("公众号", "请在「公众号」后写上名称"),
        ("网站 不是网址", "不像网址"),
        ("无 乙1县少先队", "「无」后面请只写类型"),
        ("抖音 " + "长" * 65, "名称过长"),
    ],
)
def test_bad_registrations_say_what_to_write(text, reason):
    with pytest.raises(MediaError, match=reason) as err:
        parse_registration(text)
    assert "#登记 公众号" in err.value.fix


def test_a_county_registers_its_account_and_the_audit_log_has_it(province_db, bp):
    change = say(province_db, bp, "公众号 乙1县少先队")
    assert (change.unit.code, change.kind.key, change.old, change.new) == (
        "K1",
        "mp",
        None,
        "乙1县少先队",
    )
    again = say(province_db, bp, "公众号 乙1县红领巾")
    assert (again.old, again.new) == ("乙1县少先队", "乙1县红领巾")
    assert rows(province_db) == 1
    with province_db.connect() as conn:
        entries = audit_log.entries(conn, action="media.register")
    assert [e.unit_code for e in entries] == ["K1", "K1"]
    assert entries[0].actor == "wxid_K1"


def test_a_city_registers_for_a_county_under_it_but_not_the_other_way(province_db, bp):
    assert say(province_db, bp, "K2 抖音 乙2县红领巾", unit="C1").unit.code == "K2"
    with pytest.raises(OutOfScope):
        say(province_db, bp, "C1 抖音 甲市", unit="K1")


def test_a_province_or_school_is_not_on_the_form(province_db, bp):
    with pytest.raises(MediaError, match="只统计到市、县级单位，示范省是省级"):
        say(province_db, bp, "公众号 示范省少先队", unit="P")
    with pytest.raises(MediaError, match="乙1县第1小学是学校级"):
        say(province_db, bp, "公众号 某校", unit="K1S1")


def test_the_table_has_every_city_and_county_and_shows_missing_ones(province_db, bp):
    say(province_db, bp, "公众号 乙1县少先队")
    say(province_db, bp, "网站 www.k1.gov.cn")
    say(province_db, bp, "抖音 无", unit="K2")
    table = media_table(province_db, bp, requester="P", as_of=MAY_1)
    assert [r.code for r in table.rows] == ["C1", "K1", "K2", "K3"]
    by_code = {r.code: r for r in table.rows}
    assert by_code["K1"].values["mp"] == "乙1县少先队"
    assert by_code["K1"].values["website"] == "www.k1.gov.cn"
    assert by_code["K2"].reported and by_code["K2"].values["douyin"] == ""
    assert [r.code for r in table.missing] == ["C1", "K3"]
    assert table.reported == 2
    assert by_code["K1"].parent_name == "甲市"


def test_a_county_sees_only_its_own_row(province_db, bp):
    table = media_table(province_db, bp, requester="K1", as_of=MAY_1)
    assert [r.code for r in table.rows] == ["K1"]


def test_import_a_file_by_code_or_name(province_db, bp, tmp_path):
    say(province_db, bp, "公众号 旧名称", unit="K1")
    path = worlds.write_csv(
        tmp_path / "media.csv",
        ("单位代码", "单位名称", "网站网址", "公众号", "抖音", "快手"),
        [
            ("K1", "乙1县", "", "乙1县少先队", "", "无"),
            ("", "乙2县", "http://k2.example.cn", "乙2县少先队", "乙2县红领巾", ""),
        ],
    )
    report = import_media(province_db, bp, path, requester="C1", actor="cli:test")
    assert (report.rows, report.units, report.added, report.changed) == (2, 2, 4, 1)
    by_code = {r.code: r for r in media_table(province_db, bp, requester="P", as_of=MAY_1).rows}
    assert by_code["K1"].values["mp"] == "乙1县少先队"  # replaced
    assert by_code["K1"].values["kuaishou"] == ""  # 无
    assert by_code["K1"].values["website"] is None  # an empty cell leaves it as it was
    assert by_code["K2"].values["website"] == "http://k2.example.cn"


def test_import_an_xlsx_file(province_db, bp, tmp_path):
    path = worlds.write_xlsx(tmp_path / "media.xlsx", ("单位代码", "视频号"), [("K3", "乙3县")])
    import_media(province_db, bp, path, requester="P", actor="cli:test")
    by_code = {r.code: r for r in media_table(province_db, bp, requester="P", as_of=MAY_1).rows}
    assert by_code["K3"].values["channels"] == "乙3县"


def test_a_bad_file_names_every_problem_and_writes_nothing(province_db, bp, tmp_path):
    path = worlds.write_csv(
        tmp_path / "media.csv",
        ("单位代码", "单位名称", "网站网址", "公众号"),
        [
            ("K1", "", "http://k1.example.cn", "乙1县少先队"),
            ("K9", "", "", "无名"),
            ("", "乙4县", "", "某号"),
            ("K2", "", "不是网址", ""),
            ("K1", "", "", "重复"),
            ("P", "", "", "省级"),
        ],
    )
    with pytest.raises(MediaImportError) as err:
        import_media(province_db, bp, path, requester="P", actor="cli:test")
    text = str(err.value)
    assert "登记表有 5 处错误，未写入任何数据" in text
    assert "media.csv 第 3 行：单位代码 K9 不是示范省下属的市地或县区单位" in text
    assert "media.csv 第 4 行：示范省下没有叫 乙4县 的市地或县区单位" in text
    assert "media.csv 第 5 行 「网站网址」列：网站网址 '不是网址' 不像网址" in text
    assert "media.csv 第 6 行：乙1县 重复（第 2 行已有）" in text
    assert "media.csv 第 7 行：单位代码 P 不是" in text
    assert rows(province_db) == 0


def test_a_file_without_unit_or_media_columns_is_refused(province_db, bp, tmp_path):
    no_unit = worlds.write_csv(tmp_path / "a.csv", ("公众号",), [("x",)])
    with pytest.raises(MediaImportError, match="缺少「单位代码」或「单位名称」列"):
        import_media(province_db, bp, no_unit, requester="P", actor="t")
    with pytest.raises(MediaImportError) as err:
        import_media(
            province_db,
            bp,
            worlds.write_csv(tmp_path / "b.csv", ("单位代码", "备注"), [("K1", "x")]),
            requester="P",
            actor="t",
        )
    assert "没有可登记的列" in str(err.value)


def test_a_county_cannot_import_rows_for_another_county(province_db, bp, tmp_path):
    path = worlds.write_csv(tmp_path / "m.csv", ("单位代码", "公众号"), [("K2", "乙2县")])
    with pytest.raises(MediaImportError, match="K2 不是乙1县下属的市地或县区单位"):
        import_media(province_db, bp, path, requester="K1", actor="t")


def test_guangongwei_blueprint_counts_its_own_city_and_county_levels(engine, tmp_path):
    from matrix.blueprint import load_blueprint
    from matrix.roster import import_roster, read_roster

    gbp = load_blueprint("guangongwei")
    units = [
        ("23", "黑龙江省", "省", ""),
        ("2301", "哈尔滨市", "市地", "23"),
        ("230102", "道里区", "县区", "2301"),
    ]
    persons = [("23", "王伟力", "办公室工作人员", "", "")]
    u, p = worlds.write_roster(tmp_path, units, persons)
    import_roster(engine, read_roster(u, p, gbp), gbp)
    table = media_table(engine, gbp, requester="23", as_of=MAY_1)
    assert [r.code for r in table.rows] == ["2301", "230102"]
