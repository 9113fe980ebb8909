"""``qunmatrix match``: the operator lists the suggestions of a unit's adopted group as a CSV,
marks rows to confirm and imports the file back."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app
from matrix.blueprint import load_blueprint
from matrix.db import make_engine, migrate
from matrix.provisioning.binding import lookup
from matrix.tables import JOIN_REQUEST, PERSON
from tests import match_world as mw
from tests.worlds import BOT, new_world

runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text('[[accounts]]\nid = "bot"\n', encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    migrate(engine)
    bp = load_blueprint("young_pioneers")
    county = mw.load(engine, bp, tmp_path / "roster", schools=20)
    world = new_world()
    world.account(BOT)
    mw.hand_build(engine, bp, world, county, BOT)
    engine.dispose()
    return url


def run(db, *args, code=0):
    result = runner.invoke(app, ["--db", db, *args])
    assert result.exit_code == code, result.output
    return result.output


def read(path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))
    return rows[0], rows[1:]


def write(path, header, rows) -> None:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    path.write_bytes(("\ufeff" + out.getvalue()).encode())


def bound(db, contact):
    engine = make_engine(db)
    with engine.connect() as conn:
        pid = lookup(conn, contact)
        name = None
        if pid is not None:
            name = conn.execute(select(PERSON.c.name).where(PERSON.c.id == pid)).scalar_one()
    engine.dispose()
    return name


def test_the_operator_lists_marks_and_imports(db, tmp_path):
    out = tmp_path / "match.csv"
    said = run(db, "match", "--unit", "K1", "--csv", str(out))
    # the operator reads the rooms as the bot recorded them: 群昵称, but no WeChat names, so the
    # members without a 群昵称 are unmatched here (in chat the WeChat name finds them)
    blank = len([s for s in mw.roster(20)[2] if s.style == "blank"])
    assert f"64 人未对应名册，{58 - blank} 条可确认（其中 1 人有办公室权限），2 人重名待定" in said
    assert f"{4 + blank} 人未匹配" in said
    assert "qunmatrix match --import" in said
    header, rows = read(out)
    col = {name: i for i, name in enumerate(header)}
    confirm, contact = col["确认（填“是”）"], col["微信联系人"]
    sure = [r for r in rows if r[col["可信度"]] == "可确认"]
    for r in sure[:5]:
        r[confirm] = "是"
    office = next(r for r in rows if r[contact] == mw.OFFICE_CONTACT)
    office[confirm] = "是"
    # the stranger: the operator knows who it is and writes a person of another county
    stranger = next(r for r in rows if r[contact] == mw.STRANGER)
    stranger[col["人员编号"]], stranger[confirm] = "6", "是"  # 刘洋 of 乙2县第1小学
    write(out, header, rows)
    said = run(db, "match", "--import", str(out), code=1)
    assert "已绑定 6 人" in said and "未绑定 wxid_stranger → 人员编号 6" in said
    for r in sure[:5]:
        assert bound(db, r[contact]) == r[col["名册姓名"]]
    assert bound(db, mw.OFFICE_CONTACT) == mw.OFFICE_NAME
    assert bound(db, mw.STRANGER) is None
    engine = make_engine(db)
    with engine.connect() as conn:
        held = set(conn.execute(select(JOIN_REQUEST.c.contact_id)).scalars())
    engine.dispose()
    assert held == {mw.STRANGER, mw.WRONG_UNIT}


def test_a_hostile_file_is_refused_before_anything_is_bound(db, tmp_path):
    out = tmp_path / "match.csv"
    run(db, "match", "--unit", "K1", "--csv", str(out))
    header, rows = read(out)
    col = {name: i for i, name in enumerate(header)}
    rows[0][col["确认（填“是”）"]] = "是"
    rows[1][col["确认（填“是”）"]] = "是"
    rows[1][col["人员编号"]] = "=HYPERLINK(1)"
    write(out, header, rows)
    said = run(db, "match", "--import", str(out), code=2)
    assert "第 3 行" in said and "Traceback" not in said
    assert bound(db, rows[0][col["微信联系人"]]) is None
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    assert "缺少列" in run(db, "match", "--import", str(tmp_path / "bad.csv"), code=2)


def test_no_formula_gets_into_the_file(db, tmp_path):
    engine = make_engine(db)
    from matrix.tables import MEMBERSHIP

    with engine.begin() as conn:
        conn.execute(
            MEMBERSHIP.update()
            .where(MEMBERSHIP.c.contact_id == mw.STRANGER)
            .values(nickname='=HYPERLINK("http://x","y")')
        )
    engine.dispose()
    out = tmp_path / "match.csv"
    run(db, "match", "--unit", "K1", "--csv", str(out))
    text = out.read_bytes().decode("utf-8-sig")
    assert "'=HYPERLINK" in text and ',"=HYPERLINK' not in text


def test_a_unit_without_a_group_and_no_unit_are_explained(db):
    assert "没有已建或已认领的群" in run(db, "match", "--unit", "K2", code=2)
    assert "请指明单位" in run(db, "match", code=2)
