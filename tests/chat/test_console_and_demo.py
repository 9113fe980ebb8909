"""`qunmatrix console --script`, the interactive console and `qunmatrix demo`, run as a user
would: output checked line by line."""

from __future__ import annotations

import builtins
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import app
from matrix.models import Group, Notice
from matrix.tables import table_of


@pytest.fixture
def run(province_db, monkeypatch):
    monkeypatch.setenv("QUNMATRIX_ACCOUNTS", '[{"id": "solo-bot"}]')
    monkeypatch.setenv("QUNMATRIX_LOG_LEVEL", "ERROR")
    url = province_db.url.render_as_string(hide_password=False)

    def invoke(*args: str, stdin: str | None = None):
        return CliRunner().invoke(app, ["--db", url, *args], input=stdin)

    return invoke


def script(tmp_path: Path, *lines: str, encoding: str = "utf-8") -> str:
    path = tmp_path / "rehearsal.tsv"
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return str(path)


def test_a_script_prints_every_bot_message_in_the_transcript_format(run, tmp_path):
    path = script(
        tmp_path,
        "K1:county-counselors\twxK1n008\t#同意 1",
        "",
        "K1:county-counselors\twxid_new\t<加入>",
        "乙1县少先队大队辅导员群\twxK1n008\t#同意 1",
        "K1:county-counselors\twxK1S1n012\t大家好",
        "K1:county-counselors\twxid_new\t<退出>",
    )
    result = run("console", "--script", path, "--provision")
    assert result.exit_code == 0, result.output
    group = "乙1县少先队大队辅导员群\tsolo-bot\t"
    assert result.stdout.splitlines() == [
        group + "本群没有编号为 1 的待审核入群人员。本群待审核：无。",
        group + "@K1office_staff @K1office_staff 以下入群人员待管理员审核：",  # as WeChat shows
        "      1号 wxid_new（不在名册中）",
        "    管理员请回复 #同意 1（可加手机号或姓名绑定名册）或 #拒绝 1；24 小时内未处理将自动移出。",
        group + "@wxid_new 已同意 wxid_new 入群。",
    ]


def test_a_script_runs_again_over_the_groups_the_database_recorded(run, tmp_path):
    audit_k1 = script(tmp_path, "K1:county-counselors\twxK1n008\t#核查")
    first = run("console", "--script", audit_k1, "--provision", "--write")
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("乙1县少先队大队辅导员群\tsolo-bot\t【核查】乙1县：共 8 个问题")
    again = run("console", "--script", audit_k1)  # the rooms the database recorded, mirrored
    assert again.exit_code == 0, again.output
    assert again.stdout == first.stdout


def test_a_script_lets_the_clock_run_on_to_the_reminders(run, tmp_path):
    path = script(
        tmp_path,
        "K1:county-counselors\twxK1n008\t#通知 截止 17:00 请报送建队情况",
        "K1:county-counselors\twxK1S1n012\t收到",
        "K1:county-counselors\twxK1n008\t<快进 15:00>",
    )
    result = run("console", "--script", path, "--provision")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    group = "乙1县少先队大队辅导员群\tsolo-bot\t"
    assert lines[0].startswith(group + "通知 T1 已受理，将发往 1 个群（县级 1 个）")
    assert group + "【通知 T1】乙1县" in lines
    assert group + "已记录 乙1县第1小学 收到通知 T1。" in lines
    # the console's clock starts at 09:00 today
    reminder = next(i for i, x in enumerate(lines) if "【提醒】通知 T1" in x)
    assert lines[reminder].startswith(group + "@K1S2大辅 ")  # the laggard, @-mentioned
    assert lines[reminder].endswith(" 17:00 截止，还有约 2 小时。")
    assert lines[reminder + 1] == "    以下单位尚未回执：乙1县第2小学。"


def test_an_empty_matrix_is_rehearsed_from_build_to_confirm_on_a_copy(run, province_db, tmp_path):
    path = script(
        tmp_path,
        "示范省建群演练群\twxPn001\t#建群 K1",
        "示范省建群演练群\twxPn001\t#确认",
        "K1:county-counselors\twxK1n008\t#汇总 建群 xlsx",
    )
    result = run("console", "--script", path)
    assert result.exit_code == 0, result.output
    assert "已建“示范省建群演练群”" in result.stderr and "数据库的副本" in result.stderr
    lines = result.stdout.splitlines()
    starter = "示范省建群演练群\tsolo-bot\t"
    assert lines[0] == starter + "【建群计划】乙1县"
    assert any(x.startswith(starter + "@K1") or "执行完毕" in x for x in lines)
    done = next(x for x in lines if "执行完毕" in x)
    assert done.startswith(starter + "@")  # the office is @-mentioned, as WeChat shows it
    file_line = next(x for x in lines if "[文件]" in x)
    saved = file_line.split("（文件已保存：", 1)[1].rstrip("）")
    assert Path(saved).is_file() and saved.endswith(".xlsx")
    with province_db.connect() as conn:  # the real database never saw the rehearsal
        assert conn.execute(select(func.count()).select_from(table_of(Group))).scalar() == 0


def test_a_rehearsed_notice_leaves_no_trace_unless_written(run, province_db, tmp_path):
    notice = script(tmp_path, "K1:county-counselors\twxK1n008\t#通知 请报送建队情况")
    assert run("console", "--script", notice, "--provision").exit_code == 0
    with province_db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table_of(Notice))).scalar() == 0
    written = run("console", "--script", notice, "--provision", "--write")
    assert written.exit_code == 0 and "通知 T1 已受理" in written.stdout
    assert "直接写入数据库" in written.stderr
    with province_db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table_of(Notice))).scalar() == 1


def test_a_malformed_line_is_named_before_anything_runs(run, tmp_path):
    path = script(
        tmp_path, "K1:county-counselors\twxK1n008\t#帮助", "K1:county-counselors wxK1n008 #帮助"
    )
    result = run("console", "--script", path, "--provision")
    assert result.exit_code == 2
    assert "第 2 行" in result.output and "Tab" in result.output
    assert "你在本群可以使用" not in result.stdout


def test_speaking_where_you_are_not_a_member_names_the_line(run, tmp_path):
    path = script(tmp_path, "K2:county-counselors\twxK1n008\t#帮助")
    result = run("console", "--script", path, "--provision")
    assert result.exit_code == 2
    assert "第 1 行" in result.output and "不在群“乙2县少先队大队辅导员群”中" in result.output


def test_an_unknown_group_names_the_accepted_forms(run, tmp_path):
    result = run("console", "--script", script(tmp_path, "K9:nope\twxK1n008\t#帮助"), "--provision")
    assert result.exit_code == 2 and "单位代码:群类型" in result.output
    # the example is a group of this database, not a test name
    assert "例如 P:city-youth-heads（即“示范省地市级团委少年部长群”）" in result.output


def test_a_gb18030_script_is_read(run, tmp_path):
    path = script(tmp_path, "K1:county-counselors\twxK1S1n012\t#帮助", encoding="gb18030")
    result = run("console", "--script", path, "--provision")
    assert "K1S1大辅，你在本群可以使用" in result.stdout


def test_a_script_piped_on_stdin_runs_too(run):
    result = run("console", "--provision", stdin="K1:county-counselors\twxK1S1n012\t#收到\n")
    assert result.exit_code == 0, result.output
    assert "本群还没有需要回执的通知。收到通知后再回复“收到”。" in result.stdout


def test_the_interactive_console_switches_group_and_sender(province_db, bp, monkeypatch, capsys):
    from bot.cli.console import interact
    from bot.rehearsal.stage import Stage

    typed = iter(
        [
            "/群列表 乙1县",
            "/群 K1:county-counselors",
            "/人 wxK1S1n012",
            "#帮助",
            "/人 wxid_new",
            "<加入>",
            "/成员",
            "/群 不存在",
            "K1:county-counselors\twxK1n008\t#同意 1",
            "/退出",
        ]
    )
    monkeypatch.setattr(builtins, "input", lambda prompt="": next(typed))
    with Stage(province_db, bp, accounts=("solo-bot",)) as stage:
        stage.provision()
        interact(stage)
    out = capsys.readouterr().out
    assert "乙1县少先队大队辅导员群  （K1:county-counselors）" in out
    assert "K1S1大辅，你在本群可以使用" in out
    assert "待管理员审核" in out and "wxid_new  wxid_new" in out
    assert "找不到群“不存在”" in out
    assert "已同意 wxid_new 入群。" in out


def test_the_demo_tells_the_whole_story(monkeypatch):
    """The README's demo, on a smaller sample province: the same 黑龙江省 with its cities and
    counties, but about a tenth of the schools (the demo's time goes into building every
    school's groups; the story plays in a handful of them)."""
    monkeypatch.setattr("matrix.sample.NATIONAL_SCHOOLS", 20_000)
    result = CliRunner().invoke(app, ["demo"], env={"QUNMATRIX_LOG_LEVEL": "ERROR"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "名册已导入" in out and "黑龙江省" in out
    assert "【建群执行 · 模拟微信】黑龙江省（230000）" in out  # planned, then applied day by day
    assert "  第 1 天：完成 " in out and "受邀的 " in out and "尚未完成" not in out
    assert "你在本群可以使用" in out
    assert "（不在名册中）" in out and "待管理员审核" in out
    assert "入群，并绑定名册人员" in out  # the newcomer, by their phone
    assert "你的微信还没有绑定名册，不能使用 #同意" in out
    assert "已移出本群" in out
    assert "通知 T1 已受理，将发往" in out and "【通知 T1】" in out
    assert out.count("收到通知 T1。") == 2 and "回执 2/" in out and "未回执：" in out
    assert "不在你所在单位的管辖范围内" in out
    assert "【核查】道里区：共 " in out and "群昵称不规范" in out
    assert "【微信群矩阵建设情况】" in out and "[文件] 微信群矩阵建设情况汇总表_" in out
    assert "已登记：" in out and "公众号：" in out
    assert "即将开放" not in out.split("== 2.")[1]  # nothing in the story waits for later


def test_after_provision_a_deadline_of_17_00_means_today(run, tmp_path):
    """Building takes simulated days; the rehearsal starts that many days back, so that the
    office's 截止 17:00 is today's 17:00, as the office means it."""
    path = script(tmp_path, "K1:county-counselors\twxK1n008\t#通知 截止 17:00 请报送建队情况")
    result = run("console", "--script", path, "--provision")
    assert result.exit_code == 0, result.output
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    copy = next(x for x in result.stdout.splitlines() if x.startswith("    截止："))
    assert copy == f"    截止：{today.month}月{today.day}日 17:00", copy


def test_a_script_sends_a_file_and_a_notice_takes_it(run, tmp_path):
    path = script(
        tmp_path,
        "K1:county-counselors\twxK1n008\t<文件 建队方案.pdf 200KB>",
        "K1:county-counselors\twxK1n008\t#通知 请查收建队方案 无需回执 附件",
    )
    result = run("console", "--script", path, "--provision")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    group = "乙1县少先队大队辅导员群\tsolo-bot\t"
    assert lines[0].startswith(group + "通知 T1 已受理，将发往 1 个群（县级 1 个）")
    copy = lines.index(group + "【通知 T1】乙1县")
    sent = next(i for i, x in enumerate(lines) if x.startswith(group + "[文件] 建队方案.pdf"))
    assert copy < sent
