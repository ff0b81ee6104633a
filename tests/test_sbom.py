"""An image's SBOM: CycloneDX 1.6 JSON, valid against the schema, listing the Python
packages as installed (with the SHA-256 of each RECORD), the service's wheel (with the
wheel file's SHA-256) and the installed Debian packages of a dpkg status file; the image
itself, by digest, is what the document describes."""

from __future__ import annotations

import hashlib
import io
import json
import sysconfig
import tarfile
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from buildkit.supplychain.image_contents import layer_members
from buildkit.supplychain.sbom import (
    ImageContents,
    PlatformContents,
    WheelFile,
    cyclonedx,
    debian_packages,
    python_packages,
)
from tests.helpers import require

DIGEST = "sha256:" + "0f" * 32
STATUS = """Package: python3.11-minimal
Status: install ok installed
Architecture: amd64
Version: 3.11.2-6+deb12u6
Description: Minimal subset of the Python language (version 3.11)
 This package contains the interpreter and some essential modules.

Package: old-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u10
"""


def test_the_installed_python_packages_are_read_with_their_record_hashes() -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    found = {package.name.lower(): package for package in python_packages(site)}
    rich = found["rich"]
    record = next(site.glob(f"rich-{rich.version}.dist-info")) / "RECORD"
    assert rich.record_sha256 == hashlib.sha256(record.read_bytes()).hexdigest()
    assert "packaging" in found


def test_only_installed_debian_packages_are_listed() -> None:
    names = [(p.name, p.version, p.architecture) for p in debian_packages(STATUS)]
    assert names == [
        ("libc6", "2.36-9+deb12u10", "amd64"),
        ("python3.11-minimal", "3.11.2-6+deb12u6", "amd64"),
    ]


def test_this_machines_dpkg_status_reads() -> None:
    status = Path("/var/lib/dpkg/status")
    require(status.is_file(), "not a Debian machine: no /var/lib/dpkg/status")
    assert any(p.name == "dpkg" for p in debian_packages(status.read_text()))


def test_the_document_is_valid_cyclonedx_and_describes_the_image() -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    wheel = WheelFile("toolman", "1.2.3", "toolman-1.2.3-py3-none-any.whl", "ab" * 32)
    native = PlatformContents("linux/amd64", python_packages(site), debian_packages(STATUS))
    contents = ImageContents("127.0.0.1:5000/platform/toolman", DIGEST, wheel, (native,))
    text = cyclonedx(contents)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, error
    document = json.loads(text)
    assert document["metadata"]["component"]["version"] == DIGEST
    assert document["metadata"]["component"]["type"] == "container"
    by_ref = {c["bom-ref"]: c for c in document["components"]}
    assert all(
        c["properties"] == [{"name": "buildkit:platform", "value": "linux/amd64"}]
        for c in document["components"]
        if not c["bom-ref"].startswith("wheel:")
    )
    service = by_ref["wheel:toolman-1.2.3-py3-none-any.whl"]
    assert service["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]
    assert by_ref["deb:libc6@2.36-9+deb12u10:amd64:linux/amd64"]["purl"] == (
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64"
    )
    pythons = [c for c in document["components"] if c["purl"].startswith("pkg:pypi/")]
    assert len(pythons) == len(native.python) + 1  # and the wheel
    assert all(c["hashes"][0]["alg"] == "SHA-256" for c in pythons)


def test_layer_member_names_keep_their_leading_dots() -> None:
    """A root-level whiteout (`./.wh.x`) and a dot directory (`./.venv`) keep their names:
    stripping every leading dot would hide a deleted file's whiteout and rename `.venv`."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        for name in ("./.wh.gone", "./.venv/pyvenv.cfg", "usr/lib/x", "/etc/y"):
            archive.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    names = [name for name, _, _ in layer_members(data.getvalue(), "a test layer")]
    assert names == [".wh.gone", ".venv/pyvenv.cfg", "usr/lib/x", "etc/y"]
