"""The machine-preparation scripts' parts that can be checked without changing the machine:
ci/engines.sh's second daemon (the containerd image store) as it would be configured,
checked by dockerd itself (the script prints the configuration and exits; nothing is
started or restarted), and ci/lib.sh's helpers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from buildkit.options import FALSE_WORDS, TRUE_WORDS
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


def test_the_containerd_store_daemon_leaves_the_default_bridge_alone(tmp_path: Path) -> None:
    """moby deletes the interface docker0 (whatever the daemon's own bridge is called) when
    it restarts with "bridge": "none" or with default-address-pools set: the classic
    daemon's containers then fail with "adding interface … to bridge docker0 failed"."""
    config = containerd_store_config(tmp_path)
    assert config["bridge"] not in ("", "none", "docker0")
    assert "default-address-pools" not in config


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


def lib(tmp_path: Path, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`command` in a bash that sourced ci/lib.sh (its state directory under tmp_path)."""
    return subprocess.run(
        ["bash", "-c", f'source "{ROOT}/ci/lib.sh" && {command}'],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "BUILDKIT_MACHINE_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("value", "meant"),
    [*((w, True) for w in TRUE_WORDS), *((w, False) for w in FALSE_WORDS), ("ON", True),
     (" yes ", True), ("maybe", False)],
)  # fmt: skip
def test_the_scripts_read_buildkit_require_all_as_buildkit_does(
    tmp_path: Path, value: str, meant: bool
) -> None:
    """prepare-machine.sh fails where a base image cannot be pulled when it is on."""
    result = lib(tmp_path, "require_all", BUILDKIT_REQUIRE_ALL=value)
    assert (result.returncode == 0) is meant, result.stderr


def test_one_debian_mirror_for_both_scripts(tmp_path: Path) -> None:
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    uris = [
        line.split()[1] for line in sources.read_text().splitlines() if line.startswith("URIs:")
    ] if sources.is_file() else []  # fmt: skip
    result = lib(tmp_path, "debian_mirror")
    assert result.stdout.strip() == (uris[0] if uris else "http://deb.debian.org/debian")
    for script in ("engines.sh", "prepare-machine.sh"):
        text = (ROOT / "ci" / script).read_text()
        assert "debian.sources" not in text  # the lookup lives in lib.sh only
