"""Progress bars on long steps (issue 13): drawn on stderr when it is a terminal, never in a
pipe, a test runner, CI or ``--json`` output."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import app
from bot.cli.progress import progress, wanted
from matrix.blueprint import Blueprint
from matrix.db import make_engine
from matrix.provisioning.membership import survey
from matrix.roster import read_roster
from matrix.sheets import watching
from matrix.tables import PROVISION_STEP
from tests import worlds

DRAWN = ("━", "行/秒", "校验名册", "读取 units.csv")


def on_a_terminal(args: list[str], cwd: Path) -> tuple[str, str]:
    """``qunmatrix ARGS`` with stderr on a pseudo-terminal: (stdout, what the terminal got)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUNMATRIX_") and k != "CI"}
    env["TERM"] = "xterm"
    leader, follower = pty.openpty()
    try:
        done = subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import app; app(prog_name='qunmatrix')", *args],
            stdout=subprocess.PIPE,
            stderr=follower,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
        )
        os.close(follower)
        terminal = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is done with it
                break
            if not chunk:
                break
            terminal += chunk
        out, _ = done.communicate(timeout=120)
    finally:
        os.close(leader)
    assert done.returncode == 0, terminal.decode(errors="replace")
    return out.decode(), terminal.decode(errors="replace")


def roster_files(tmp_path: Path) -> tuple[Path, Path]:
    return worlds.write_roster(tmp_path, *worlds.province(counties=4))


def test_import_draws_progress_on_a_terminal_and_keeps_stdout_clean(tmp_path: Path) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'q.db'}"]
    assert CliRunner().invoke(app, [*db, "init"]).exit_code == 0
    units, persons = roster_files(tmp_path)
    out, terminal = on_a_terminal([*db, "import", str(units), str(persons)], tmp_path)
    assert "名册已导入" in out
    assert not [d for d in DRAWN if d in out], out
    assert "校验名册" in terminal and "读取 units.csv" in terminal, terminal
    assert "行/秒" in terminal or "━" in terminal, terminal


def test_json_output_draws_nothing_even_on_a_terminal(tmp_path: Path) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'q.db'}"]
    runner = CliRunner()
    assert runner.invoke(app, [*db, "init"]).exit_code == 0
    units, persons = roster_files(tmp_path)
    assert runner.invoke(app, [*db, "import", str(units), str(persons)]).exit_code == 0
    out, terminal = on_a_terminal([*db, "plan", "--json"], tmp_path)
    assert out.lstrip().startswith("{")
    assert "计算建群计划" not in terminal and "━" not in terminal, terminal


def test_nothing_is_drawn_in_a_pipe_or_a_test(tmp_path: Path) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'q.db'}"]
    runner = CliRunner()
    assert runner.invoke(app, [*db, "init"]).exit_code == 0
    units, persons = roster_files(tmp_path)
    result = runner.invoke(app, [*db, "import", str(units), str(persons)])
    assert result.exit_code == 0
    assert not [d for d in DRAWN if d in result.output], result.output


class Terminal:
    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def test_wanted_only_on_a_terminal_outside_ci(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert wanted(Terminal())  # type: ignore[arg-type]
    assert not wanted(Terminal(), quiet=True)  # type: ignore[arg-type]
    monkeypatch.setenv("CI", "true")
    assert not wanted(Terminal())  # type: ignore[arg-type]
    monkeypatch.delenv("CI")
    monkeypatch.setenv("TERM", "dumb")
    assert not wanted(Terminal())  # type: ignore[arg-type]
    with progress() as bar:  # stderr here is the test runner's, not a terminal
        assert bar.bar is None


def test_a_watcher_is_told_every_row_read(bp: Blueprint, tmp_path: Path) -> None:
    units, persons = roster_files(tmp_path)
    seen: dict[str, tuple[int, int | None]] = {}
    with watching(lambda name, done, total: seen.__setitem__(name, (done, total))):
        roster = read_roster(units, persons, bp)
    lines = len(units.read_text(encoding="utf-8").splitlines())
    assert seen["units.csv"] == (lines, lines)
    assert seen["persons.csv"][0] == len(roster.positions) + 1  # with the header


# --- counted bars: each long command's core function tells the bar its count -----------------


def imported(tmp_path: Path) -> list[str]:
    """A database holding the four-county province: the ``--db`` arguments for it."""
    db = ["--db", f"sqlite:///{tmp_path / 'q.db'}"]
    runner = CliRunner()
    assert runner.invoke(app, [*db, "init"]).exit_code == 0
    units, persons = roster_files(tmp_path)
    assert runner.invoke(app, [*db, "import", str(units), str(persons)]).exit_code == 0
    return db


def counts(terminal: str) -> set[str]:
    """The ``done/total`` figures the bars showed."""
    return set(re.findall(r"\d+/\d+", terminal))


def expected_groups(tmp_path: Path, bp: Blueprint) -> int:
    """The groups of the matrix as the survey finds them (counted apart from the bars)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    with engine.connect() as conn:
        found = survey(conn, bp)
    engine.dispose()
    assert len(found.targets) == len(found.expectations) > 1  # no shard in this small world
    return len(found.targets)


def test_sample_counts_the_units_it_generates(tmp_path: Path) -> None:
    out, terminal = on_a_terminal(["sample", "--scale", "county", "-o", "s"], tmp_path)
    units = len((tmp_path / "s" / "units.csv").read_text(encoding="utf-8").splitlines()) - 1
    assert "生成示例名册（county）" in terminal, terminal
    assert units > 1 and f"{units}/{units}" in counts(terminal), terminal
    assert not [d for d in DRAWN if d in out], out


def test_plan_counts_the_groups_it_plans(tmp_path: Path, bp: Blueprint) -> None:
    db = imported(tmp_path)
    groups = len(json.loads(CliRunner().invoke(app, [*db, "plan", "--json"]).output)["groups"])
    _, terminal = on_a_terminal([*db, "plan"], tmp_path)
    assert "计算建群计划" in terminal, terminal
    assert groups == expected_groups(tmp_path, bp)
    assert f"{groups}/{groups}" in counts(terminal), terminal


def test_audit_counts_the_groups_it_audits(tmp_path: Path, bp: Blueprint) -> None:
    db = imported(tmp_path)
    groups = expected_groups(tmp_path, bp)
    _, terminal = on_a_terminal([*db, "audit"], tmp_path)
    assert "审计各群" in terminal, terminal
    assert f"{groups}/{groups}" in counts(terminal), terminal


def test_summary_counts_the_groups_it_forecasts(tmp_path: Path, bp: Blueprint) -> None:
    db = imported(tmp_path)
    groups = expected_groups(tmp_path, bp)
    _, terminal = on_a_terminal([*db, "summary"], tmp_path)
    assert "汇总各单位" in terminal, terminal
    assert f"{groups}/{groups}" in counts(terminal), terminal


def test_provision_counts_the_steps_it_applies(tmp_path: Path) -> None:
    db = imported(tmp_path)
    _, terminal = on_a_terminal([*db, "provision"], tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    with engine.connect() as conn:
        steps = conn.execute(select(func.count()).select_from(PROVISION_STEP)).scalar_one()
    engine.dispose()
    assert "按建群计划逐日执行" in terminal, terminal
    assert steps > 1 and f"{steps}/{steps}" in counts(terminal), terminal
