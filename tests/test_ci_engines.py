"""ci/engines.sh's second daemon (the containerd image store): the configuration it would
start it with, checked by dockerd itself. Nothing is started or restarted here: the
script prints the configuration and exits."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.helpers import ROOT, require


def containerd_store_config(tmp_path: Path) -> dict[str, Any]:
    printed = subprocess.run(
        ["bash", str(ROOT / "ci" / "engines.sh"), "--print-containerd-store-config"],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "BUILDKIT_MACHINE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (tmp_path / "containerd-store.json").write_text(printed.stdout)
    config: dict[str, Any] = json.loads(printed.stdout)
    return config


def test_the_containerd_store_daemon_has_containerd_namespaces_of_its_own(tmp_path: Path) -> None:
    """On a host with a system containerd both daemons would otherwise share the `moby`
    namespaces, each seeing (and cleaning up) the other's images and containers."""
    config = containerd_store_config(tmp_path)
    assert config["containerd-namespace"] not in ("", "moby")
    assert config["containerd-plugins-namespace"] not in ("", "plugins.moby")
    assert config["containerd-namespace"] != config["containerd-plugins-namespace"]
    assert config["features"] == {"containerd-snapshotter": True}


def test_dockerd_accepts_the_containerd_store_configuration(tmp_path: Path) -> None:
    containerd_store_config(tmp_path)
    dockerd = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/usr/bin")
    require(dockerd is not None, "dockerd is not installed; run `bash ci/prepare-machine.sh`")
    assert dockerd is not None
    checked = subprocess.run(
        [dockerd, "--validate", "--config-file", str(tmp_path / "containerd-store.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "configuration OK" in checked.stdout + checked.stderr
