"""Every way an operator can get the command line wrong, on every command: a database that
cannot be reached, a broken config.toml, an unknown command or option, a bad value, a broken
blueprint, an internal failure. The terminal shows short Chinese with the fix, never a
traceback or click's English, and the exit code is not 0.

The commands are enumerated from the Typer app, so a command added later is covered too."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from loguru import logger
from typer import _click
from typer.testing import CliRunner

from bot.cli import app

CHINESE = re.compile(r"[\u4e00-\u9fff]")
# what click, typer and pydantic say in English when nobody translates them
ENGLISH = (
    "Traceback",
    "Usage:",
    "Try '",
    "Error",
    "Missing argument",
    "Missing parameter",
    "No such command",
    "No such option",
    "Did you mean",
    "Invalid value",
    "Show this message",
    "[default",
    "[required]",
    "Arguments",
    "Options",
    "Commands",
    "Input should",
    "Got unexpected",
    "OperationalError",
)
# commands that never open --db: a bad one cannot fail them (they are still run with a broken
# config.toml); the demo builds its own database in a temporary folder and takes ~20 s
DB_FREE = {("sample",), ("blueprint",), ("demo",)}
BAD_DBS = {
    "sqlite-missing-dir": "sqlite:////nonexistent-dir/q.db",
    "postgres-down": "postgres://x@127.0.0.1:1/y",
    "mysql": "mysql://a@b/c",
}


def _walk(
    command: _click.Command, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], _click.Command]]:
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name, sub in subcommands.items():
            yield from _walk(sub, (*path, name))
    else:
        yield path, command


COMMANDS = dict(_walk(typer.main.get_command(app), ()))


def _args(path: tuple[str, ...], folder: Path) -> list[str]:
    """The command with every required argument filled in by an existing file (a CSV)."""
    given = folder / "input.csv"
    given.write_text("单位代码,单位名称\n", encoding="utf-8")
    required = [p for p in COMMANDS[path].params if p.required and p.param_type_name == "argument"]
    return [*path, *(str(given) for _ in required)]


def _terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """``qunmatrix ARGS`` in a fresh process, as an operator's terminal shows it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUNMATRIX_")}
    done = subprocess.run(
        [sys.executable, "-c", "from bot.cli import app; app(prog_name='qunmatrix')", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


def assert_chinese_failure(code: int, out: str) -> None:
    assert code != 0, out
    assert CHINESE.search(out), out
    leaked = [phrase for phrase in ENGLISH if phrase in out]
    assert not leaked, f"{leaked} in:\n{out}"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``qunmatrix ARGS`` in-process (the same words; cheaper than a process per case)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUNMATRIX_CONFIG", raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.output

    return invoke


def test_the_enumeration_finds_every_command_and_the_db_free_ones_exist() -> None:
    assert {("init",), ("import",), ("tree",), ("log", "verify"), ("media", "import")} <= set(
        COMMANDS
    )
    assert set(COMMANDS) >= DB_FREE, "a command listed as not using --db no longer exists"


@pytest.mark.parametrize("path", sorted(set(COMMANDS) - DB_FREE), ids=" ".join)
def test_every_command_names_an_unreachable_database(path: tuple[str, ...], tmp_path: Path) -> None:
    code, out = _terminal(["--db", BAD_DBS["sqlite-missing-dir"], *_args(path, tmp_path)], tmp_path)
    assert_chinese_failure(code, out)


@pytest.mark.parametrize("url", list(BAD_DBS.values()), ids=list(BAD_DBS))
@pytest.mark.parametrize("command", ["init", "tree"])
def test_each_kind_of_bad_database_url_is_explained(command: str, url: str, tmp_path: Path) -> None:
    code, out = _terminal(["--db", url, command], tmp_path)
    assert_chinese_failure(code, out)
    assert "数据库" in out and ("无法连接" in out or "看不懂" in out)


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_points_at_the_broken_line_of_config_toml(
    path: tuple[str, ...], run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "config.toml").write_text(
        'db = "sqlite:///q.db\nlog_level = "INFO"\n', encoding="utf-8"
    )
    code, out = run(*_args(path, tmp_path))
    assert_chinese_failure(code, out)
    assert "config.toml 第 1 行第 21 列" in out and "引号没有闭合" in out


def test_a_broken_config_toml_in_a_fresh_process_shows_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('db = "sqlite:///q.db\n', encoding="utf-8")
    code, out = _terminal(["tree"], tmp_path)
    assert_chinese_failure(code, out)
    assert "config.toml 第 1 行" in out


def test_a_misspelt_setting_is_named_with_what_was_meant(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "config.toml").write_text('[join_review]\non_timeou = "keep"\n', encoding="utf-8")
    code, out = run("tree")
    assert_chinese_failure(code, out)
    assert "join_review.on_timeou：不认识的设置项（是不是想写 on_timeout）" in out


def test_an_invalid_setting_lists_the_allowed_values(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "config.toml").write_text('[join_review]\non_timeout = "kick"\n', encoding="utf-8")
    code, out = run("tree")
    assert_chinese_failure(code, out)
    assert "join_review.on_timeout：应为 'remove'、'keep'、'remind' 之一" in out


def test_a_broken_blueprint_names_file_line_and_column(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "county.toml").write_text('name = "县\n', encoding="utf-8")
    code, out = run("--blueprint", "county.toml", "blueprint")
    assert_chinese_failure(code, out)
    assert "county.toml 第 1 行第 10 列：引号没有闭合" in out


def test_an_unknown_command_suggests_the_near_one(tmp_path: Path) -> None:
    code, out = _terminal(["improt"], tmp_path)
    assert_chinese_failure(code, out)
    assert "没有命令“improt”。是不是想用 import？" in out and "用法：qunmatrix" in out


def test_an_unknown_subcommand_suggests_the_near_one(run) -> None:  # type: ignore[no-untyped-def]
    code, out = run("log", "verfy")
    assert_chinese_failure(code, out)
    assert "是不是想用 verify" in out


def test_a_bad_option_value_says_what_is_expected(tmp_path: Path) -> None:
    code, out = _terminal(["tree", "--depth", "x"], tmp_path)
    assert_chinese_failure(code, out)
    assert "--depth / -d 的值无效：应为整数" in out and "qunmatrix tree --help" in out


def test_a_number_out_of_range_names_the_limit(run) -> None:  # type: ignore[no-untyped-def]
    code, out = run("tree", "--depth", "-5")
    assert_chinese_failure(code, out)
    assert "--depth / -d 的值无效：应不小于 0" in out


def test_a_missing_argument_is_named(run) -> None:  # type: ignore[no-untyped-def]
    code, out = run("import")
    assert_chinese_failure(code, out)
    assert "缺少参数 units" in out


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_refuses_an_unknown_option_in_chinese(path: tuple[str, ...], run) -> None:  # type: ignore[no-untyped-def]
    code, out = run(*path, "--no-such-option")
    assert_chinese_failure(code, out)
    assert "没有选项 --no-such-option" in out


@pytest.mark.parametrize("path", [(), *sorted(COMMANDS)], ids=lambda p: " ".join(p) or "root")
def test_every_help_page_is_chinese(path: tuple[str, ...], run) -> None:  # type: ignore[no-untyped-def]
    code, out = run(*path, "--help")
    assert code == 0 and "用法：qunmatrix" in out and "显示本帮助并退出" in out
    leaked = [phrase for phrase in ENGLISH if phrase in out]
    assert not leaked, f"{leaked} in:\n{out}"


@pytest.mark.parametrize(
    ("inside", "command"),
    [
        ("matrix.tree.UnitTree.load", ("tree",)),
        ("matrix.blueprint.load_blueprint", ("blueprint", "young_pioneers")),  # logs nothing else
    ],
    ids=["tree", "blueprint"],
)
def test_an_internal_failure_shows_its_reference_and_logs_the_traceback_to_the_file(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inside: str, command: tuple[str, ...]
) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'q.db'}"
    assert run("--db", db, "init")[0] == 0

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug deep inside")

    monkeypatch.setattr(inside, broken)
    logger.remove()  # as in a fresh process: nothing set up yet
    code, out = run("--db", db, *command)
    assert code == 1 and "Traceback" not in out and "a bug deep inside" not in out
    ref = re.search(r"内部错误（编号 (\w+)）", out)
    assert ref and "qunmatrix-error.log" in out
    logged = (tmp_path / "qunmatrix-error.log").read_text(encoding="utf-8")
    assert ref[1] in logged and "Traceback" in logged and "a bug deep inside" in logged
