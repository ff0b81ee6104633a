from __future__ import annotations

import asyncio
import subprocess

import httpx
import pytest
from conftest import Running, console_script

from orchestrator import __version__
from orchestrator.app import create_app
from orchestrator.settings import Settings, SettingsError


def test_health_in_process() -> None:
    async def get_health() -> httpx.Response:
        app = create_app(Settings(), environ={"ORCHESTRATOR_TOKEN": "t"})
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/health")

    response = asyncio.run(get_health())
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "orchestrator", "version": __version__}


def test_health_from_the_console_script(running_orchestrator: Running) -> None:
    response = httpx.get(f"{running_orchestrator.base_url}/health", timeout=5)
    assert response.status_code == 200
    assert response.json()["service"] == "orchestrator"
    assert httpx.get(f"{running_orchestrator.base_url}/nope", timeout=5).status_code == 404


def test_version_flag() -> None:
    result = subprocess.run(
        [console_script("orchestrator"), "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"orchestrator {__version__}"


def test_bad_port_names_the_value_and_exits_2() -> None:
    result = subprocess.run(
        [console_script("orchestrator"), "--port", "eighty"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "'eighty'" in result.stderr
    assert "1-65535" in result.stderr


def test_settings_from_env() -> None:
    settings = Settings.from_env({"ORCHESTRATOR_PORT": "9000", "ORCHESTRATOR_LOG_LEVEL": "DEBUG"})
    assert settings.port == 9000
    assert settings.log_level == "debug"
    with pytest.raises(SettingsError, match="ORCHESTRATOR_PORT"):
        Settings.from_env({"ORCHESTRATOR_PORT": "70000"})
