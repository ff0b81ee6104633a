"""An image's SBOM, CycloneDX 1.6 JSON, written with cyclonedx-python-lib.

It lists what the image holds: the Python packages exactly as installed (name and version
from each `*.dist-info/METADATA`, and the SHA-256 of its `RECORD` — the file that holds
the hash of every file the package installed), the service's own wheel (the SHA-256 of
the wheel file that was installed), and the Debian packages of the base image (read from
its `/var/lib/dpkg/status`). `metadata.component` is the image itself, its version the
manifest digest, so an SBOM cannot pass for another image's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL


@dataclass(frozen=True)
class PythonPackage:
    name: str
    version: str
    record_sha256: str


@dataclass(frozen=True)
class DebianPackage:
    name: str
    version: str
    architecture: str


@dataclass(frozen=True)
class WheelFile:
    distribution: str
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class PlatformContents:
    """What one platform's image holds."""

    platform: str  # linux/amd64
    python: tuple[PythonPackage, ...]
    debian: tuple[DebianPackage, ...]


@dataclass(frozen=True)
class ImageContents:
    repository: str  # registry/path, no tag
    digest: str  # the pushed manifest: an image, or the index of the platforms below
    wheel: WheelFile
    platforms: tuple[PlatformContents, ...]


def python_package(metadata: str, record: bytes) -> PythonPackage:
    """A distribution from its `METADATA` text and its `RECORD` file's bytes."""
    headers = HeaderParser().parsestr(metadata)
    name, version = str(headers["Name"]), str(headers["Version"])
    return PythonPackage(name, version, hashlib.sha256(record).hexdigest())


def python_packages(site_packages: Path) -> tuple[PythonPackage, ...]:
    """Every distribution installed under `site_packages`, sorted by name."""
    found = []
    for info in sorted(site_packages.glob("*.dist-info")):
        metadata = info / "METADATA"
        record = info / "RECORD"
        if metadata.is_file() and record.is_file():
            text = metadata.read_text(encoding="utf-8", errors="replace")
            found.append(python_package(text, record.read_bytes()))
    return tuple(sorted(found, key=lambda p: p.name.lower()))


def debian_packages(status: str) -> tuple[DebianPackage, ...]:
    """The installed packages of a dpkg status file (`Status: install ok installed`)."""
    found = []
    for stanza in status.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            found.append(
                DebianPackage(
                    fields["Package"], fields.get("Version", ""), fields.get("Architecture", "")
                )
            )
    return tuple(sorted(found, key=lambda p: p.name))


def sha256(hex_digest: str) -> list[HashType]:
    return [HashType(alg=HashAlgorithm.SHA_256, content=hex_digest)]


def normalized(name: str) -> str:
    return name.lower().replace("_", "-")


def library(
    name: str, version: str, ref: str, purl: PackageURL, *, platform: str,
    hashes: list[HashType] | None = None,
) -> Component:  # fmt: skip
    return Component(
        type=ComponentType.LIBRARY,
        name=name,
        version=version,
        bom_ref=f"{ref}:{platform}",
        hashes=hashes or [],
        purl=purl,
        properties=[Property(name="buildkit:platform", value=platform)],
    )


def add_platform(bom: Bom, image: PlatformContents, wheel: WheelFile) -> None:
    """One platform's packages; each bom-ref ends with the platform (an index lists the
    same package once per platform, each with its own hash)."""
    for package in image.python:
        if normalized(package.name) == normalized(wheel.distribution):
            continue  # the service itself: its wheel is listed on its own
        purl = PackageURL("pypi", name=normalized(package.name), version=package.version)
        ref = f"pypi:{package.name}@{package.version}"
        hashes = sha256(package.record_sha256)
        component = library(package.name, package.version, ref, purl,
                            platform=image.platform, hashes=hashes)  # fmt: skip
        bom.components.add(component)
    for deb in image.debian:
        purl = PackageURL("deb", namespace="debian", name=deb.name, version=deb.version,
                          qualifiers={"arch": deb.architecture})  # fmt: skip
        ref = f"deb:{deb.name}@{deb.version}:{deb.architecture}"
        bom.components.add(library(deb.name, deb.version, ref, purl, platform=image.platform))


def cyclonedx(contents: ImageContents) -> str:
    """The SBOM document (JSON text)."""
    bom = Bom()
    name = contents.repository.rsplit("/", 1)[-1]
    bom.metadata.component = Component(
        type=ComponentType.CONTAINER,
        name=contents.repository,
        version=contents.digest,
        bom_ref=f"{contents.repository}@{contents.digest}",
        purl=PackageURL("oci", name=name, version=contents.digest,
                        qualifiers={"repository_url": contents.repository}),
    )  # fmt: skip
    wheel = contents.wheel
    bom.components.add(
        Component(
            type=ComponentType.APPLICATION,
            name=wheel.distribution,
            version=wheel.version,
            bom_ref=f"wheel:{wheel.filename}",
            hashes=sha256(wheel.sha256),
            purl=PackageURL(
                "pypi",
                name=wheel.distribution,
                version=wheel.version,
                qualifiers={"file_name": wheel.filename},
            ),
        )
    )
    for image in contents.platforms:
        add_platform(bom, image, wheel)
    bom.register_dependency(bom.metadata.component, list(bom.components))
    return JsonV1Dot6(bom).output_as_string(indent=2)
