"""`qunmatrix binding list` and `qunmatrix binding revoke`, run by the operator against the
database a running bot uses (the stage): the revocation takes effect at the bot's next message
and the office is told in its own group when the bot sends what the CLI queued."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.rehearsal.stage import Stage
from tests.chat.conftest import K1_GROUP, TEACHER, TEACHER_PHONE, audit

HEADER = "编号  微信联系人  名册人员（单位）  方式  状态  绑定时间  操作人"


@pytest.fixture
def run(stage: Stage, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("QUNMATRIX_LOG_LEVEL", "ERROR")
    monkeypatch.delenv("QUNMATRIX_CONFIG", raising=False)
    url = stage.engine.url.render_as_string(hide_password=False)

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["--db", url, *args])
        return result.exit_code, result.output

    return invoke


def teacher_line(out: str) -> str:
    [line] = [line for line in out.splitlines() if f"  {TEACHER}  " in line]
    return line


def test_list_shows_the_bindings_of_a_unit(run):
    code, out = run("binding", "list", "--unit", "乙1县第1小学")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == HEADER
    assert len(lines) == 1 + 3 + 1  # the school's three people, and how to revoke
    assert "  K1S1大辅（乙1县第1小学）  名册微信号  有效  " in teacher_line(out)
    assert lines[-1].startswith("解除绑定：qunmatrix binding revoke 编号")
    code, out = run("binding", "list", "--person", TEACHER_PHONE)
    assert code == 0 and len(out.splitlines()) == 3
    assert run("binding", "list", "--limit", "2")[1].count("\n") == 1 + 2 + 2
    code, out = run("binding", "list", "--unit", "火星县")
    assert code == 2 and "找不到单位“火星县”" in out


def test_revoke_ends_the_binding_and_the_office_is_told(run, stage):
    number = teacher_line(run("binding", "list", "--person", TEACHER_PHONE)[1]).split()[0]
    code, out = run("binding", "revoke", number)
    assert code == 0, out
    assert out.splitlines() == [
        f"已解除绑定 {number}：微信 {TEACHER} 不再代表 K1S1大辅（乙1县第1小学，方式：名册微信号）。",
        "已通知办公室：乙1县少先队大队辅导员群（由运行中的机器人发送）。",
    ]
    actor = f"cli:{getpass.getuser()}"
    [entry] = audit(stage, "binding.revoke")
    assert (entry["actor"], entry["contact"], entry["binding"]) == (actor, TEACHER, int(number))
    # what the CLI queued goes out once the bot's relay reaches it
    lines = stage.advance(datetime.now(UTC) + timedelta(minutes=1))
    told = [line for line in lines if line.by_bot and line.text.startswith("【解绑通知】")]
    assert [(line.group, line.text) for line in told] == [
        (
            "乙1县少先队大队辅导员群",
            f"【解绑通知】名册人员 K1S1大辅（乙1县第1小学）与微信 {TEACHER} 的绑定（方式：名册微信号）"
            f"已由 运维人员（{actor}） 解除，该微信不再代表此人。",
        )
    ]
    assert {"wxK1n008", "wxK1n009"} == set(told[0].mentions)
    assert "还没有绑定名册" in stage.reply(K1_GROUP, TEACHER, "#上报 你好")

    code, out = run("binding", "list", "--person", TEACHER_PHONE, "--history")
    assert f"  名册微信号  已撤销（{actor}）  " in teacher_line(out)
    assert run("binding", "list", "--person", TEACHER_PHONE)[1].strip() == "没有有效的绑定。"
    code, out = run("binding", "revoke", number)
    assert code == 2 and f"绑定 {number} 已不是有效绑定（已撤销）" in out


def test_revoke_by_contact_or_person_and_what_is_not_there(run, stage):
    code, out = run("binding", "revoke", "wxK1n008")
    assert code == 0 and "微信 wxK1n008 不再代表 K1office_staff（乙1县" in out
    code, out = run("binding", "revoke", "13900000013")  # a person, by their phone
    assert code == 0 and "不再代表 K1S1中辅0（乙1县第1小学" in out
    code, out = run("binding", "revoke", "999999")
    assert code == 2 and "没有编号为 999999 的绑定" in out
    code, out = run("binding", "revoke", "nobody-at-all")
    assert code == 2 and "找不到“nobody-at-all”" in out
    assert "Traceback" not in out
