"""Parsing commands from the table: names, aliases, typed parameters, usage errors."""

from __future__ import annotations

import pytest

from bot.chat.commands import Command, Param, UsageError, Who
from bot.chat.registry import COMMANDS, TABLE, bind, parse


def units(command: Command, param: Param, text: str) -> str:
    if text in ("K1", "乙1县"):
        return "K1"
    if text == "甲市":
        return "C1"
    raise UsageError(command, "unknown_unit", param=param, value=text)


def args(text: str) -> dict:
    inv = parse(text)
    assert inv is not None and inv.command is not None
    return bind(inv.command, inv.rest, units)


def test_every_command_of_the_issue_is_in_the_table():
    names = {(c.name, c.alias) for c in TABLE}
    for pair in [
        ("帮助", "help"),
        ("建群", "provision"),
        ("核查", "audit"),
        ("同意", "approve"),
        ("拒绝", "reject"),
        ("绑定", "bind"),
        ("通知", "notice"),
        ("收到", "ack"),
        ("进度", "status"),
        ("上报", "report"),
        ("汇总", "summary"),
        ("登记", "register"),
    ]:
        assert pair in names
    assert all(c.summary and c.example for c in TABLE)


def test_every_example_parses_with_its_own_command():
    for command in TABLE:
        inv = parse(command.example)
        assert inv is not None and inv.command is command, command.example
        bind(command, inv.rest, units)


@pytest.mark.parametrize(
    "text, key",
    [
        ("#核查", "audit"),
        ("＃核查", "audit"),
        ("# 核查", "audit"),
        ("#AUDIT", "audit"),
        ("#核查K1", "audit"),
        ("  #帮助  ", "help"),
        ("收到", "ack"),
        ("收到。", "ack"),
        ("收到 N3", "ack"),
    ],
)
def test_command_names_are_found(text, key):
    inv = parse(text)
    assert inv is not None and inv.command is not None and inv.command.key == key


@pytest.mark.parametrize("text", ["大家好", "收到了吗", "#", "", "今天#核查#了吗"])
def test_ordinary_chat_is_not_a_command(text):
    assert parse(text) is None


def test_an_english_alias_must_end_at_a_word_boundary():
    inv = parse("#helpme")
    assert inv is not None and inv.command is None and inv.name == "helpme"


def test_unit_number_phone_choice_and_text_parameters():
    assert args("#核查 乙1县") == {"unit": "K1"}
    assert args("#同意 3号 13900000001") == {"number": 3, "person": "13900000001"}
    assert args("#绑定 13900000001") == {"phone": "13900000001"}
    assert args("#汇总 K1　媒体 CSV") == {
        "unit": "K1",
        "form": None,
        "table": "媒体",
        "format": "csv",
    }
    assert args("#通知 明天  上午 开会") == {"text": "明天  上午 开会"}
    assert args("#拒绝 2 不是 本县 老师") == {"number": 2, "reason": "不是 本县 老师"}
    assert args("#帮助 approve")["command"] is COMMANDS["approve"]


def test_choices_take_the_aliases_the_engines_know():
    assert args("#汇总 附件2 表格") == {
        "unit": None,
        "form": None,
        "table": "建群",
        "format": "xlsx",
    }
    assert args("#汇总 K1 自媒体 Excel") == {
        "unit": "K1",
        "form": None,
        "table": "媒体",
        "format": "xlsx",
    }
    assert args("#汇总 审计 文字") == {
        "unit": None,
        "form": None,
        "table": "核查",
        "format": "文本",
    }
    assert args("#登记 微信公众号 乙1县少先队") == {
        "unit": None,
        "platform": "公众号",
        "account": "乙1县少先队",
    }
    assert args("#登记 乙1县 官网 www.example.gov.cn")["platform"] == "网站"
    assert args("#登记 暂无 抖音") == {"unit": None, "platform": "无", "account": "抖音"}


def test_optional_parameters_are_skipped_when_a_later_one_fits():
    assert args("#汇总 xlsx") == {"unit": None, "form": None, "table": None, "format": "xlsx"}
    assert args("#汇总 核查") == {"unit": None, "form": None, "table": "核查", "format": None}


@pytest.mark.parametrize(
    "text, problem, value",
    [
        ("#同意", "missing", ""),
        ("#同意 0", "bad_value", "0"),
        ("#同意 abc", "bad_value", "abc"),
        ("#绑定 1390000", "bad_value", "1390000"),
        ("#确认 T1 现在", "extra", "现在"),  # #确认 may name a held notice
        ("#汇总 K1 建群 xlsx 多余", "extra", "多余"),
        ("#核查 火星县", "unknown_unit", "火星县"),
        ("#登记 微博 abc", "bad_value", "微博"),
    ],
)
def test_usage_errors_name_the_problem(text, problem, value):
    with pytest.raises(UsageError) as caught:
        args(text)
    assert (caught.value.problem, caught.value.value) == (problem, value)


def test_usage_lines_come_from_the_parameters():
    assert COMMANDS["summary"].usage == "#汇总 [单位] [表名] [填报编号] [格式]"
    assert COMMANDS["register"].usage == "#登记 [单位] <类型> <名称或网址>"


def test_office_commands_are_recorded_and_bind_records_itself():
    recorded = {c.key for c in TABLE if c.recorded}
    assert {c.key for c in TABLE if c.who is Who.OFFICE} <= recorded
    assert "unbind" in recorded and "help" not in recorded
    # #绑定 writes its own audit entry for every attempt (matrix.relay.bind_claims), with the phone
    # masked: the dispatcher's record would keep the typed number in clear
    assert "bind" not in recorded
