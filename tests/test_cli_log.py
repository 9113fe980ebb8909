"""``qunmatrix log`` as an operator uses it: verify the chain, keep its anchor, read the log."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from bot.cli import app
from matrix import audit_log
from matrix.db import make_engine
from tests import worlds
from tests.test_cli_operator_commands import run  # noqa: F401  (the fixture: the CLI on a fresh SQLite file)


@pytest.fixture
def cli(run, tmp_path: Path):  # type: ignore[no-untyped-def]  # noqa: F811
    """The CLI on a database holding the province roster and four audit entries."""
    assert run("init")[0] == 0
    units, persons = worlds.write_roster(tmp_path, *worlds.province())
    assert run("import", str(units), str(persons))[0] == 0  # entry 1: roster.import
    engine = make_engine(run.db)
    with engine.begin() as conn:
        audit_log.record(conn, "wxK1n008", "command.notice", "K1", text="请各校今天报送")
        audit_log.record(conn, "wxK2n018", "command.summary", "K2", table="build")
        audit_log.record(conn, "wxK1n008", "command.denied", "K1S1", text="#通知 " + "长" * 500)
    engine.dispose()
    return run


def sql(cli, *statements: str) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(cli.db)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def test_an_untouched_log_verifies(cli) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("log", "verify")
    assert code == 0
    assert "审计日志完整：共 4 条" in out and "链头为第 4 条" in out
    assert "--anchor" in out  # says how to catch a rewrite too


def test_the_anchor_is_printed_and_checked(cli) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("log", "anchor")
    assert code == 0 and "审计日志链头：第 4 条" in out
    [kept] = [line.removeprefix("锚点：") for line in out.splitlines() if line.startswith("锚点：")]
    assert kept.startswith("4:") and len(kept) == 2 + 64
    code, out = cli("log", "verify", "--anchor", kept)
    assert code == 0 and "与锚点（第 4 条）一致" in out


def test_a_changed_entry_fails_and_is_named(cli) -> None:  # type: ignore[no-untyped-def]
    sql(cli, "DROP TRIGGER audit_log_no_update", "UPDATE audit_log SET actor = 'x' WHERE id = 2")
    code, out = cli("log", "verify")
    assert code == 3
    assert "审计日志不完整" in out and "第 2 条内容被改" in out
    assert "Traceback" not in out


def test_a_cut_tail_with_the_head_reset_passes_alone_and_fails_against_the_anchor(cli) -> None:  # type: ignore[no-untyped-def]
    kept = cli("log", "anchor")[1].split("锚点：")[1].split()[0]
    sql(
        cli,
        "DROP TRIGGER audit_log_no_delete",
        "DROP TRIGGER audit_head_moves_by_append",
        "DELETE FROM audit_log WHERE id > 2",
        "UPDATE audit_head SET last_id = 2, last_hash = (SELECT hash FROM audit_log WHERE id = 2),"
        " last_at = (SELECT at FROM audit_log WHERE id = 2)",
    )
    assert cli("log", "verify")[0] == 0
    code, out = cli("log", "verify", "--anchor", kept)
    assert code == 3 and "第 3—4 条缺失：末尾被删除（锚点记到第 4 条）" in out


def test_a_deleted_head_is_reported_not_an_internal_error(cli) -> None:  # type: ignore[no-untyped-def]
    sql(cli, "DROP TRIGGER audit_head_no_delete", "DELETE FROM audit_head")
    code, out = cli("log", "verify")
    assert code == 3 and "链头记录（audit_head 表中的一行）缺失" in out
    code, out = cli("log", "anchor")
    assert code == 2 and "链头记录（audit_head）不见了" in out


def test_a_malformed_anchor_is_explained(cli) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("log", "verify", "--anchor", "4:abc")
    assert code == 2 and "锚点格式不对" in out and "编号:哈希" in out


def test_show_lists_the_newest_first_with_chinese_actions(cli) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("log", "show")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "审计日志：共 4 条。"
    assert lines[1].startswith("#4  ") and "越权被拒" in lines[1]
    assert "乙1县" in lines[3] and "下发通知" in lines[3] and "text=请各校今天报送" in lines[3]
    assert "导入名册" in lines[4] and "cli:" in lines[4]
    assert len(lines[1]) < 250  # the 500-character text is cut


def test_show_filters_by_subtree_actor_since_and_limit(cli) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("log", "show", "--unit", "K1")
    assert code == 0 and "（乙1县（K1）及下属单位）：共 2 条" in out
    assert "汇总" not in out  # K2's entry
    code, out = cli("log", "show", "--actor", "wxK2n018")
    assert "共 1 条" in out and "汇总" in out
    code, out = cli("log", "show", "--limit", "1")
    assert "共 4 条，显示最近 1 条" in out and "要看更早的" in out
    assert len([line for line in out.splitlines() if line.startswith("#")]) == 1
    assert "共 0 条" in cli("log", "show", "--since", "2999-01-01")[1]
    assert "共 4 条" in cli("log", "show", "--since", "2000-01-01")[1]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--unit", "NOPE"), "找不到单位代码 NOPE"),
        (("--since", "昨天"), "日期 昨天 看不懂"),
        (("--limit", "0"), "--limit 应在 1 到 1000 之间"),
    ],
)
def test_show_explains_what_it_cannot_read(cli, args, message) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("log", "show", *args)
    assert code == 2 and message in out


@pytest.mark.parametrize("url", ["sqlite:////nonexistent/folder/x.db", "nonsense://x"])
@pytest.mark.parametrize("command", ["verify", "anchor", "show"])
def test_a_bad_db_is_a_chinese_message_not_a_traceback(url: str, command: str) -> None:
    result = CliRunner().invoke(app, ["--db", url, "log", command])
    assert result.exit_code == 2
    assert ("数据库" in result.output and "--db" in result.output) or "sqlite:///" in result.output
    assert "Traceback" not in result.output
