from __future__ import annotations

import os
import shutil
import subprocess
import sys

from mcp_wrapper import __version__


def script() -> str:
    found = shutil.which("mcp-wrapper", path=os.path.dirname(sys.executable))
    assert found, "mcp-wrapper console script is not installed"
    return found


def test_help_describes_the_forwarder() -> None:
    result = subprocess.run([script(), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "MCP_TOOLMAN_SERVER_URL" in result.stdout


def test_version() -> None:
    result = subprocess.run([script(), "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"mcp-wrapper {__version__}"
