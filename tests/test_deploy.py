"""The deploy/ folder: the compose file names its services with pinned images and takes its
secrets from deploy/.env; docker compose validates it where available; the systemd unit passes
systemd-analyze verify; the Dockerfile installs what the bot needs at run time."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
ROOT = DEPLOY.parent


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_runs_the_three_services_with_pinned_images() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "wechaty-gateway", "qunmatrix"}
    for name in ("postgres", "wechaty-gateway"):
        image = services[name]["image"]
        assert re.fullmatch(r"[\w./-]+:\d+(\.\d+)*(-[\w.]+)?", image), image  # a version tag
        assert not image.endswith(":latest")
    # the 0.x line of the puppet service, the one python-wechaty 0.10.7 speaks fully
    assert services["wechaty-gateway"]["image"].startswith("wechaty/wechaty:0.")
    assert services["qunmatrix"]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_the_bot_reaches_the_gateway_and_the_database_with_the_same_secrets() -> None:
    services = compose()["services"]
    gateway, bot = services["wechaty-gateway"]["environment"], services["qunmatrix"]["environment"]
    assert "${WECHATY_TOKEN" in gateway["WECHATY_TOKEN"]
    assert bot["QUNMATRIX_WECHATY__TOKEN"] == "${WECHATY_TOKEN}"
    assert (
        bot["QUNMATRIX_WECHATY__ENDPOINT"]
        == f"wechaty-gateway:{gateway['WECHATY_PUPPET_SERVER_PORT']}"
    )
    assert (
        gateway["WECHATY_PUPPET_SERVICE_NO_TLS_INSECURE_SERVER"] == "true"
    )  # no TLS: python-wechaty 0.10
    assert "@postgres:5432/qunmatrix" in bot["QUNMATRIX_DB"]
    assert services["qunmatrix"]["command"][-1] == "run"
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    for key in ("POSTGRES_PASSWORD", "WECHATY_TOKEN", "WECHATY_PUPPET_PADLOCAL_TOKEN"):
        assert re.search(rf"^{key}=", example, re.M), key
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


def _docker_compose() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_docker_compose_validates_the_file(tmp_path: Path) -> None:
    cmd = _docker_compose()
    if cmd is None:
        pytest.skip("docker compose is not installed here (the YAML is checked above)")
    env = tmp_path / ".env"
    env.write_text("POSTGRES_PASSWORD=x\nWECHATY_TOKEN=insecure_x\n", encoding="utf-8")
    result = subprocess.run(
        [*cmd, "-f", str(DEPLOY / "compose.yaml"), "--env-file", str(env), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    unit = (DEPLOY / "qunmatrix.service").read_text(encoding="utf-8")
    assert (
        "ExecStart=/opt/qunmatrix/.venv/bin/qunmatrix --config /etc/qunmatrix/config.toml run"
        in unit
    )
    # verify checks that ExecStart exists: point it at this checkout's venv
    here = ROOT / ".venv" / "bin" / "qunmatrix"
    copy = tmp_path / "qunmatrix.service"
    copy.write_text(unit.replace("/opt/qunmatrix/.venv/bin/qunmatrix", str(here)), encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "qunmatrix.service" not in result.stderr, result.stderr  # not even a warning


def test_the_dockerfile_installs_the_package_with_its_templates() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11\.\d+-slim", text, re.M)  # pinned, the supported Python
    for folder in ("matrix", "bot", "templates"):
        assert f"COPY {folder} ./{folder}" in text
    assert "pip install --no-compile -e ." in text and "USER qunmatrix" in text
