"""``qunmatrix doctor`` as an operator runs it on a machine that is, or is not, ready."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests import worlds


@pytest.fixture
def doctor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUNMATRIX_CONFIG", raising=False)
    monkeypatch.setenv("QUNMATRIX_LOG_LEVEL", "ERROR")

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, [*args, "doctor"])
        return result.exit_code, result.output

    return run


def ready_db(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path / 'q.db'}"
    runner = CliRunner()
    runner.invoke(app, ["--db", db, "init"])
    units, persons = worlds.write_roster(tmp_path, *worlds.province())
    assert runner.invoke(app, ["--db", db, "import", str(units), str(persons)]).exit_code == 0
    return db


def real_config(tmp_path: Path, endpoint: str, token: str = "insecure_qunmatrix") -> str:
    path = tmp_path / "config.toml"
    path.write_text(
        f'platform = "wechaty"\n[wechaty]\nendpoint = "{endpoint}"\ntoken = "{token}"\n'
        '[[accounts]]\nid = "bot-1"\n',
        encoding="utf-8",
    )
    return str(path)


def test_a_ready_simulated_setup_passes(doctor, tmp_path):
    code, out = doctor("--db", ready_db(tmp_path))
    assert code == 0, out
    assert "✔ 名册：单位 11 个" in out and "模拟微信模式，不需要" in out and "全部通过" in out


def test_a_fresh_machine_is_told_each_step(doctor, tmp_path):
    code, out = doctor("--db", f"sqlite:///{tmp_path / 'new.db'}")
    assert code == 1
    assert "✘ 数据库" in out and "qunmatrix init" in out
    code, out = doctor("--db", "sqlite:////nonexistent-dir/q.db")
    assert code == 1 and "无法连接数据库 sqlite:////nonexistent-dir/q.db" in out
    # the driver's English and its traceback go to the log, not the terminal
    assert "Traceback" not in out and "OperationalError" not in out and "unable to open" not in out
    assert "SQLite 的目录须存在且可写" in out


def test_an_empty_roster_fails_with_the_import_command(doctor, tmp_path):
    db = f"sqlite:///{tmp_path / 'q.db'}"
    CliRunner().invoke(app, ["--db", db, "init"])
    code, out = doctor("--db", db)
    assert code == 1 and "✘ 名册：单位 0 个" in out and "qunmatrix import" in out


def test_real_mode_without_endpoint_or_token_names_them(doctor, tmp_path):
    code, out = doctor("--db", ready_db(tmp_path), "--config", real_config(tmp_path, "", ""))
    assert code == 1
    assert "[wechaty] 中填写 endpoint、token" in out


def test_an_unreachable_puppet_service_fails_with_the_fix(doctor, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = real_config(tmp_path, f"127.0.0.1:{port}")
    code, out = doctor("--db", ready_db(tmp_path), "--config", config)
    assert code == 1
    assert f"✘ puppet 服务：127.0.0.1:{port} 连接失败" in out and "docker compose" in out
