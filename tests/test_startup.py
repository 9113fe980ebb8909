"""Start-up (issue 12): a small command loads only what it uses. `qunmatrix --help` and
`qunmatrix blueprint` must not pay for SQLAlchemy, alembic, networkx, openpyxl or Wechaty;
the commands that need them import them when they run. The time itself is a benchmark
(README, "Benchmarks"), not a test."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = {
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "mako",
    "networkx",
    "openpyxl",
    "lxml",
    "wechaty",
    "wechaty_puppet",
    "grpc",
    "psycopg",
}

PROBE = """
import json, sys
from bot.cli import app
try:
    app(sys.argv[1:], prog_name="qunmatrix")
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
"""


def loaded_by(*args: str) -> tuple[set[str], str]:
    """The top-level modules loaded by ``qunmatrix ARGS`` in a fresh interpreter, and its output."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1])), done.stdout


@pytest.mark.parametrize(
    ("args", "also_not"),
    [
        (("--help",), {"jinja2", "loguru", "pydantic", "asyncio"}),
        (("blueprint",), {"loguru", "asyncio"}),  # logging is set up only if it fails
        (("import", "--help"), set()),
    ],
    ids=["help", "blueprint", "import-help"],
)
def test_a_small_command_loads_no_heavy_module(args: tuple[str, ...], also_not: set[str]) -> None:
    loaded, out = loaded_by(*args)
    assert not loaded & (HEAVY | also_not), sorted(loaded & (HEAVY | also_not))
    assert out.strip(), "the command printed nothing"


def test_every_command_is_still_registered_with_its_chinese_help() -> None:
    _, out = loaded_by("--help")
    for name, words in {
        "init": "创建或升级数据库",
        "import": "导入名册",
        "tree": "显示单位树",
        "sample": "生成示例名册",
        "blueprint": "校验并显示蓝图",
        "plan": "建群计划",
        "audit": "检查群矩阵",
        "provision": "按建群计划执行",
        "console": "在模拟微信中",
        "demo": "演示",
        "run": "连接 Wechaty",
        "summary": "汇总表",
        "media": "网站及自媒体登记",
    }.items():
        assert any(
            line.split("│")[1:2] and name in line and words in line for line in out.splitlines()
        ), (
            name,
            out,
        )


def test_a_command_that_needs_the_database_still_loads_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    loaded, _ = loaded_by("--db", f"sqlite:///{tmp_path / 'x.db'}", "init")
    assert {"sqlalchemy", "alembic"} <= loaded


def test_the_cli_skips_pydantics_plugin_scan() -> None:
    """Looking through every installed distribution for pydantic plugins costs each command
    ~15 ms; qunmatrix uses none (an operator who does sets PYDANTIC_DISABLE_PLUGINS)."""
    probe = (
        "import os, sys\n"
        "os.environ.pop('PYDANTIC_DISABLE_PLUGINS', None)\n"
        "from bot.cli import app\n"
        "try:\n    app(['blueprint'], prog_name='qunmatrix')\n"
        "except SystemExit:\n    pass\n"
        "from pydantic.plugin import _loader\n"
        "print(_loader._plugins is None, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "True", done.stderr


def test_the_console_script_exits_as_the_command_says() -> None:
    """`qunmatrix` is ``bot.cli:main``: the command's exit status and output pass through the
    quick way out (the collector frozen at exit)."""
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text("utf-8"))
    assert project["project"]["scripts"]["qunmatrix"] == "bot.cli:main"
    probe = "import sys\nfrom bot.cli import main\nsys.argv[0] = 'qunmatrix'\nmain()\n"
    ok = subprocess.run([sys.executable, "-c", probe, "blueprint"], capture_output=True, text=True)
    assert ok.returncode == 0 and "校验通过" in ok.stdout, ok
    bad = subprocess.run(
        [sys.executable, "-c", probe, "blueprint", "no_such_blueprint"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.strip(), bad
