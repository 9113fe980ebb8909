"""``qunmatrix plan``, ``qunmatrix audit`` and ``qunmatrix provision`` as the operator runs them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests import worlds

runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A database file with the province world, and a config.toml with one bot account."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text('[[accounts]]\nid = "bot"\n', encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    units, persons = worlds.write_roster(tmp_path, *worlds.province())
    for args in (["init"], ["import", str(units), str(persons)]):
        result = runner.invoke(app, ["--db", url, *args])
        assert result.exit_code == 0, result.output
    return url


def run(db, *args):
    result = runner.invoke(app, ["--db", db, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_plan_in_chinese_grouped_by_unit(db):
    out = run(db, "plan")
    assert out.startswith("【建群计划 · 预览】示范省（P）")
    assert "共 5 个群；建群 5 · 设管理员 10" in out
    assert "用时：1 天（已是这些账号配额下最短，达到理论下限）" in out
    assert (
        "乙1县（K1）\n  · 乙1县少先队大队辅导员群（应有 8 人）  账号 bot，第 1 天\n      建群，首批直接拉入 8 人"
        in out
    )
    assert out.rstrip().endswith("这只是预览，尚未执行任何操作。脚本可用 --json 读取完整计划。")


def test_plan_json_for_scripts(db):
    data = json.loads(run(db, "plan", "--unit", "K1", "--json"))
    assert set(data) == {"groups", "actions", "schedule"}
    [group] = data["groups"]
    assert set(group) == {"unit", "kind", "shard", "name", "members", "admins"}
    assert (group["unit"], group["kind"], group["shard"]) == ("K1", "county-counselors", 0)
    assert all(isinstance(p, int) for p in group["members"])
    assert [a["action"] for a in data["actions"]] == ["create", "set_admin", "set_admin"]
    assert data["actions"][0]["members"] == group["members"]
    assert {a["account"] for a in data["actions"]} == {"bot"} and data["schedule"]["days"] == 1


def test_audit_in_chinese_and_as_json(db):
    out = run(db, "audit", "--unit", "C1")
    assert out.startswith("【群矩阵检查】甲市（C1）\n共 4 个问题：未建群 4")
    assert "  [严重] 未建群 ·「甲市县级少工委负责同志群」\n      请甲市牵头建立" in out
    data = json.loads(run(db, "audit", "--json"))
    assert set(data) == {"findings"}
    assert all(
        set(f) == {"code", "severity", "unit", "group", "person", "person_name", "contact", "fix"}
        for f in data["findings"]
    )
    assert [f["unit"] for f in data["findings"]] == ["P", "C1", "K1", "K2", "K3"]


def test_an_unknown_unit_is_a_chinese_error(db):
    result = runner.invoke(app, ["--db", db, "plan", "--unit", "ZZ"])
    assert result.exit_code == 2
    assert "找不到单位代码 ZZ" in result.output


def test_provision_builds_on_the_simulated_wechat_and_the_plan_is_then_empty(db):
    out = run(db, "provision", "--unit", "C1")
    assert out.startswith(
        "【建群执行 · 模拟微信】甲市（C1）\n计划：建群 4 · 设管理员 8；按账号配额需 1 天"
    )
    assert "  第 1 天：完成 12 步\n" in out
    assert "尚未完成" not in out
    assert "所有群都已符合规则" in run(db, "plan", "--unit", "C1")
    assert "未建群" not in run(db, "audit", "--unit", "C1")
    again = run(db, "provision", "--unit", "C1")  # the rooms recorded are mirrored, not rebuilt
    assert "所有群都已符合规则，没有需要执行的步骤。" in again
    assert "建群 1" in run(db, "plan")  # the province's own group is still to build


def test_provision_in_real_mode_says_how_it_runs_there(db, monkeypatch):
    monkeypatch.setenv("QUNMATRIX_PLATFORM", "wechaty")
    result = runner.invoke(app, ["--db", db, "provision"])
    assert result.exit_code == 2
    assert "真实微信模式下不能从命令行直接执行建群计划" in result.output
    assert "#建群" in result.output and "#确认" in result.output
