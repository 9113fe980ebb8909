"""The command line as an operator uses it: init, import, tree, sample, blueprint (the demo is
run in tests/chat/test_console_and_demo.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import app
from matrix import audit_log
from matrix.db import make_engine
from matrix.models import Unit
from tests import worlds


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUNMATRIX_CONFIG", raising=False)
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'cli.db'}"

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["--db", db, *args])
        return result.exit_code, result.output

    invoke.db = db  # type: ignore[attr-defined]
    return invoke


def test_import_before_init_says_what_to_do(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    units, persons = worlds.write_roster(tmp_path, *worlds.province())
    code, out = run("import", str(units), str(persons))
    assert code == 2
    assert "尚未初始化" in out and "qunmatrix init" in out


def test_init_import_tree(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run("init")[0] == 0
    units, persons = worlds.write_roster(tmp_path, *worlds.province())
    code, out = run("import", "--dry-run", str(units), str(persons))
    assert code == 0 and "【试运行】" in out and "单位：新增 11" in out
    code, out = run("import", str(units), str(persons))
    assert code == 0 and "名册已导入" in out and "单位：新增 11，变更 0，移除 0" in out
    code, out = run("import", str(units), str(persons))
    assert "没有变化" in out
    code, out = run("tree", "--depth", "1")
    assert code == 0
    assert "示范省（P，省）  下辖 市 1 · 县 3 · 学校 6" in out
    assert "    甲市（C1，市）  下辖 县 3 · 学校 6" in out
    assert "合计：省 1 · 市 1 · 县 3 · 学校 6" in out
    code, out = run("tree", "NOPE")
    assert code == 2 and "找不到单位代码 NOPE" in out
    engine = make_engine(run.db)
    with engine.connect() as conn:
        actions = [e.action for e in audit_log.entries(conn)]
    assert actions == ["roster.import", "roster.import"]  # the dry run wrote nothing


def test_broken_roster_exits_non_zero_and_writes_nothing(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("init")
    units, persons = worlds.province()
    units[2] = ("K1", "乙1县", "county", "C9")
    u, p = worlds.write_roster(tmp_path, units, persons)
    code, out = run("import", str(u), str(p))
    assert code == 2
    assert "名册有 1 处错误，未写入任何数据" in out
    assert "units.csv 第 4 行 「parent_code」列：上级代码 C9 不在单位表中" in out
    with make_engine(run.db).connect() as conn:
        assert conn.execute(select(func.count()).select_from(Unit)).scalar_one() == 0


def test_blueprint_command(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out = run("blueprint")
    assert code == 0 and "★ 中小学少先队大队辅导员群［通知链］" in out
    # extension groups: optional, and how to turn one on
    assert "可选，不列入建群计划" in out and "optional = true 改为 false" in out
    assert "各下级单位骨干中队辅导员（每单位2—3名）" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[matrix]\nname = "x"\nmax_group_size = 900\n', encoding="utf-8")
    code, out = run("blueprint", str(bad))
    assert code == 2
    assert "matrix.max_group_size：数值太大" in out and "level：缺少必填项" in out


def test_sample_then_import(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("init")
    code, out = run("sample", "--scale", "county", "--out", str(tmp_path / "s"))
    assert code == 0 and "下一步：qunmatrix import" in out
    code, out = run("import", str(tmp_path / "s/units.csv"), str(tmp_path / "s/persons.csv"))
    assert code == 0, out
    code, out = run("sample", "--scale", "city")
    assert code == 2 and "county、province 或 national" in out


def test_config_file_and_environment(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "config.toml").write_text('blueprint = "guangongwei"\n', encoding="utf-8")
    code, out = run("blueprint")
    assert code == 0 and "关工委工作微信群矩阵" in out
    monkeypatch.setenv("QUNMATRIX_BLUEPRINT", "young_pioneers")
    code, out = run("blueprint")
    assert "少先队工作微信群矩阵" in out
    (tmp_path / "config.toml").write_text('colour = "red"\n', encoding="utf-8")
    code, out = run("blueprint")
    assert code == 2 and "配置有误" in out and "colour：不认识的设置项" in out


def test_the_environment_refines_the_config_file_section_by_section(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from bot.config import load_settings

    (tmp_path / "config.toml").write_text(
        '[wechaty]\nendpoint = "file:9"\ntoken = "file-token"\n[relay]\nmax_attempts = 4\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("qunmatrix_wechaty__token", "env-token")  # any case
    monkeypatch.setenv("QUNMATRIX_ACCOUNTS", '[{"id": "solo"}]')  # a list is JSON
    monkeypatch.setenv("QUNMATRIX_SOMETHING_ELSE", "x")  # names no setting: not one
    settings = load_settings()
    assert (settings.wechaty.endpoint, settings.wechaty.token) == ("file:9", "env-token")
    assert settings.relay.max_attempts == 4 and [a.id for a in settings.accounts] == ["solo"]
    # a whole section as JSON, refined by a variable inside it, whatever the order
    monkeypatch.setenv("QUNMATRIX_WECHATY", '{"endpoint": "env:1"}')
    settings = load_settings()
    assert (settings.wechaty.endpoint, settings.wechaty.token) == ("env:1", "env-token")
    assert load_settings(db="sqlite:///cli.db").db == "sqlite:///cli.db"  # options win

    monkeypatch.setenv("QUNMATRIX_RELAY__MAX_ATEMPTS", "3")
    code, out = run("blueprint")
    assert code == 2 and "relay.max_atempts：不认识的设置项（是不是想写 max_attempts）" in out
    monkeypatch.delenv("QUNMATRIX_RELAY__MAX_ATEMPTS")
    monkeypatch.setenv("QUNMATRIX_ACCOUNTS", "solo")
    code, out = run("blueprint")
    assert code == 2 and "环境变量 QUNMATRIX_ACCOUNTS 应为 JSON" in out
    assert "Traceback" not in out


def test_the_bot_accounts_are_one_list_with_distinct_ids(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "config.toml").write_text(
        '[[accounts]]\nid = "bot-a"\n[[accounts]]\nid = "bot-a"\n', encoding="utf-8"
    )
    code, out = run("blueprint")
    assert code == 2 and "accounts：账号 bot-a 重复出现" in out
    (tmp_path / "config.toml").write_text('[simulated]\naccounts = ["x"]\n', encoding="utf-8")
    code, out = run("blueprint")
    assert code == 2 and "simulated.accounts：不认识的设置项" in out  # one list: [[accounts]]


def test_a_config_file_given_once_does_not_stick_to_the_process(tmp_path: Path) -> None:
    """--config must not leak into settings read later (or into processes started later)."""
    import os

    from bot.config import load_settings

    (tmp_path / "other.toml").write_text('blueprint = "guangongwei"\n', encoding="utf-8")
    assert load_settings(tmp_path / "other.toml").blueprint == "guangongwei"
    assert "QUNMATRIX_CONFIG" not in os.environ or os.environ["QUNMATRIX_CONFIG"] != str(
        tmp_path / "other.toml"
    )
