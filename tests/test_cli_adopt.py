"""``qunmatrix adopt``: match the rooms the bots sit in with the expected groups of a province,
topics written the way people write them; nothing is adopted without a confirmation."""

from __future__ import annotations

import csv

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app
from matrix.db import make_engine
from matrix.platform import Room
from matrix.provisioning.actual import record_rooms
from matrix.tables import GROUP
from tests import worlds

runner = CliRunner()

TOPICS = {  # as people wrote them → (unit, kind, shard) or None: must not match
    "乙1县少先队大队辅导员一群": ("K1", "county-counselors", 0),
    "乙2县 少先队大队辅导员群": ("K2", "county-counselors", 0),
    "乙3县少先队大队辅导员": ("K3", "county-counselors", 0),
    "甲市县级少工委负责同志群（一）": ("C1", "county-league-leaders", 0),
    "示范省地市级团委少年部长群": ("P", "city-youth-heads", 0),
    "乙1县少工委委员群": ("K1", "county-committee", 0),
    "甲市少工委委员群": ("C1", "city-committee", 0),
    "甲市少先队大队辅导员群": None,  # a city leads no counselor group
    "乙4县少先队大队辅导员群": None,  # no such county
    "乙1县少先队中队辅导员群": None,  # no such group
    "乙1县家长群": None,
}


@pytest.fixture
def db(tmp_path, monkeypatch):
    """The province world, with the rooms the running bot reported sitting in."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text('[[accounts]]\nid = "bot"\n', encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    units, persons = worlds.write_roster(tmp_path, *worlds.province())
    for args in (["init"], ["import", str(units), str(persons)]):
        result = runner.invoke(app, ["--db", url, *args])
        assert result.exit_code == 0, result.output
    engine = make_engine(url)
    with engine.begin() as conn:
        rooms = [Room(f"r{i}@chatroom", t, 3) for i, t in enumerate(TOPICS)]
        record_rooms(conn, "bot", rooms)
    engine.dispose()
    return url


def run(db, *args, code=0):
    result = runner.invoke(app, ["--db", db, *args])
    assert result.exit_code == code, result.output
    return result.output


def adopted(db) -> dict[str, tuple[str, str, int]]:
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(
            select(GROUP.c.room_id, GROUP.c.unit_code, GROUP.c.kind, GROUP.c.shard).where(
                GROUP.c.adopted_at.is_not(None)
            )
        ).all()
    engine.dispose()
    topics = {f"r{i}@chatroom": t for i, t in enumerate(TOPICS)}
    return {topics[r.room_id]: (r.unit_code, r.kind, r.shard) for r in rows}


def test_match_lists_the_rooms_with_their_unit_and_adopts_nothing(db):
    out = run(db, "adopt", "--match")
    assert "机器人所在的 11 个群中，有 7 个群名与应建的群相符" in out
    assert (
        "“乙1县少先队大队辅导员一群” → 乙1县（K1）中小学少先队大队辅导员群，把握中（应为“乙1县少先队大队辅导员群”）"
        in out
    )
    assert "“示范省地市级团委少年部长群” → 示范省（P）地市级团委少年部长群，把握高\n" in out
    for topic, want in TOPICS.items():
        assert (f"“{topic}”" in out) == (want is not None), topic
    assert "以上均未认领" in out
    assert adopted(db) == {}


def test_yes_adopts_the_matched_rooms_and_no_others(db):
    out = run(db, "adopt", "--match", "--yes")
    assert "已认领 7 个群" in out
    assert adopted(db) == {t: v for t, v in TOPICS.items() if v is not None}
    again = run(db, "adopt", "--match")
    assert "没有群名与应建的群相符" in again


def test_a_csv_is_written_edited_and_imported(db, tmp_path):
    path = tmp_path / "rooms.csv"
    out = run(db, "adopt", "--match", "--csv", str(path))
    assert f"已写入 {path}" in out and adopted(db) == {}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:6] == ["群ID", "群名称", "单位代码", "单位", "群类型", "分群号"]
    assert len(rows) == 8
    kept = [rows[0]]
    for row in rows[1:]:
        if row[1] == "乙1县少工委委员群":
            continue  # the operator decides not to adopt this one
        if row[1] == "乙3县少先队大队辅导员":
            row[2] = "K3S1"  # a slip: a school leads no group, the row fails on its own
        kept.append(row)
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(kept)
    out = run(db, "adopt", "--import", str(path), code=1)
    assert "已认领 5 个群" in out
    assert "未认领第 6 行（乙3县少先队大队辅导员）：认领：乙3县第1小学不牵头任何群" in out
    got = adopted(db)
    assert set(got) == {t for t, v in TOPICS.items() if v is not None} - {
        "乙1县少工委委员群",
        "乙3县少先队大队辅导员",
    }


def test_without_match_or_import_it_says_what_to_do(db):
    out = run(db, "adopt", code=2)
    assert "qunmatrix adopt --match" in out
