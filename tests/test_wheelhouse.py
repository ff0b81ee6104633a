"""An image's dependencies are installed at the versions its service's lock file pins,
whatever else the wheelhouse holds: what pip-audit audits (locks/<service>.txt) is what the
image ships. Real pip, offline, on wheels made here."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from buildkit.checks.locks import installed_lock, lock_path
from buildkit.deps.wheelhouse import install_for_platform
from buildkit.errors import StageFailed
from buildkit.proc import Runner

PLATFORM = "linux/amd64"
DEPENDENCY = "bk_locked_dependency"  # a name no index or machine wheel directory holds


def make_wheel(directory: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel of one module, requiring `requires`."""
    dist_info = f"{name}-{version}.dist-info"
    path = directory / f"{name}-{version}-py3-none-any.whl"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {requirement}\n" for requirement in requires
    )
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{name}/__init__.py", f"VERSION = {version!r}\n")
        wheel.writestr(f"{dist_info}/METADATA", metadata)
        wheel.writestr(
            f"{dist_info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(f"{dist_info}/RECORD", "")
    return path


@pytest.fixture
def wheelhouse(tmp_path: Path) -> tuple[Path, Path]:
    """A cache holding two versions of the dependency, and the service's wheel."""
    cache = tmp_path / "wheelhouse"
    cache.mkdir()
    for version in ("1.0", "2.0"):
        make_wheel(cache, DEPENDENCY, version)
    dist = tmp_path / "dist"
    dist.mkdir()
    return cache, make_wheel(dist, "bk_service", "0.1", requires=(DEPENDENCY,))


def installed(target: Path) -> list[str]:
    return sorted(p.name for p in target.glob(f"{DEPENDENCY}-*.dist-info"))


def install(wheel: Path, cache: Path, target: Path, lock: Path | None) -> None:
    install_for_platform(wheel, platform=PLATFORM, target=target, cache=cache, offline=True,
                         runner=Runner(), constraints=lock)  # fmt: skip


def test_the_lock_pins_the_installed_version(wheelhouse: tuple[Path, Path], tmp_path: Path) -> None:
    cache, wheel = wheelhouse
    install(wheel, cache, tmp_path / "free", None)
    assert installed(tmp_path / "free") == [f"{DEPENDENCY}-2.0.dist-info"]  # pip's choice
    lock = lock_path(tmp_path, "bk_service")
    lock.parent.mkdir()
    lock.write_text(f"# made by a test\n{DEPENDENCY}==1.0\n")
    assert installed_lock(tmp_path, "bk_service") == lock
    install(wheel, cache, tmp_path / "locked", lock)
    assert installed(tmp_path / "locked") == [f"{DEPENDENCY}-1.0.dist-info"]


def test_a_lock_the_wheelhouse_cannot_meet_says_how_to_renew_it(
    wheelhouse: tuple[Path, Path], tmp_path: Path
) -> None:
    cache, wheel = wheelhouse
    lock = tmp_path / "bk_service.txt"
    lock.write_text(f"{DEPENDENCY}==3.0\n")
    with pytest.raises(
        StageFailed,
        match=r"bk_service\.txt pins: offline, `python -m buildkit wheelhouse` .*`nox -s lock`",
    ):
        install(wheel, cache, tmp_path / "target", lock)


def test_a_service_without_a_lock_file_has_none(tmp_path: Path) -> None:
    assert installed_lock(tmp_path, "bk_service") is None
