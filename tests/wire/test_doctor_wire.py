"""``qunmatrix doctor`` against the local puppet-service test server (the Node gateway of the
wire test): the last check of the README's 上线 walk that runs without a WeChat account."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from tests import worlds
from tests.wire.mock_service import TOKEN, start_service
from tests.wire.test_wire import WORLD


def test_doctor_is_green_against_a_running_puppet_service(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QUNMATRIX_LOG_LEVEL", "ERROR")
    svc = start_service(WORLD, tmp_path)
    try:
        db = f"sqlite:///{tmp_path / 'q.db'}"
        config = tmp_path / "config.toml"
        config.write_text(
            f'platform = "wechaty"\ndb = "{db}"\n[wechaty]\nendpoint = "{svc.endpoint}"\n'
            f'token = "{TOKEN}"\n[[accounts]]\nid = "bot-1"\n',
            encoding="utf-8",
        )
        runner = CliRunner()
        base = ["--config", str(config)]
        assert runner.invoke(app, [*base, "init"]).exit_code == 0
        units, persons = worlds.write_roster(tmp_path, *worlds.province())
        assert runner.invoke(app, [*base, "import", str(units), str(persons)]).exit_code == 0
        result = runner.invoke(app, [*base, "doctor"])
        assert result.exit_code == 0, result.output
        assert f"✔ puppet 服务：{svc.endpoint} 可以连接" in result.output
        assert "下一步：qunmatrix run --config config.toml" in result.output
    finally:
        svc.stop()
