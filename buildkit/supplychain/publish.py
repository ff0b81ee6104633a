"""After every push, the pushed digest's SBOM (read from the image as the registry holds
it) is written under build/; with --sign its SLSA provenance too, the digest is signed, both are
attached as attestations signed by the same key, and `verify` checks the result exactly as
a consumer would, with the key's public half (signed keylessly: with the identity of the
GitHub Actions workflow that signed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from buildkit.registry.client import RegistryClient
from buildkit.registry.reference import Repository
from buildkit.supplychain.cosign import (
    BUILDX_PROVENANCE_TYPE,
    KEYLESS,
    PROVENANCE,
    SBOM,
    Cosign,
    keyless_identity,
)
from buildkit.supplychain.image_contents import buildx_provenance, image_contents
from buildkit.supplychain.sbom import ImageContents, PlatformContents, WheelFile, cyclonedx
from buildkit.supplychain.statements import BuildFacts, provenance
from buildkit.supplychain.verify import Line, RegistryFactory, verify


@dataclass(frozen=True)
class Release:
    """What one pushed image is, for its SBOM and provenance."""

    repository: Repository
    digest: str
    ref: str  # a tag just pushed, to verify through
    wheel_distribution: str
    wheel_sha256: str
    facts: BuildFacts


@dataclass(frozen=True)
class Published:
    sbom: Path
    provenance: Path
    public_key: Path | None  # None when signed keylessly: the certificate says who signed
    lines: tuple[Line, ...]
    buildx_provenance: tuple[Path, ...] = ()  # buildx's own, attached as well

    @property
    def ok(self) -> bool:
        return bool(self.lines) and all(line.ok for line in self.lines)

    def details(self, relative: Path) -> dict[str, object]:
        return {
            "sbom": str(self.sbom.relative_to(relative)),
            "provenance": str(self.provenance.relative_to(relative)),
            "public_key": str(self.public_key.relative_to(relative)) if self.public_key else "",
            "buildx_provenance": [str(p.relative_to(relative)) for p in self.buildx_provenance],
            "verify": [line.render() for line in self.lines],
            "verified": self.ok,
        }


def wheel_of(release: Release, platforms: tuple[PlatformContents, ...], dist: Path) -> WheelFile:
    """The service's wheel: its version as installed in the image, its file in dist/."""
    wanted = release.wheel_distribution.lower().replace("_", "-")
    version = next(
        (
            package.version
            for platform in platforms
            for package in platform.python
            if package.name.lower().replace("_", "-") == wanted
        ),
        "",
    )
    stem = f"{wanted.replace('-', '_')}-{version}-"
    files = sorted(dist.glob(f"{stem}*.whl")) if version else []
    return WheelFile(release.wheel_distribution, version, files[0].name if files else "",
                     release.wheel_sha256)  # fmt: skip


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_sbom(
    release: Release, *, registry: RegistryClient, build_dir: Path, dist_dir: Path
) -> Path:
    """Every push, signed or not: build/sbom/<image>.cdx.json, read from the image as the
    registry holds it under the pushed digest (every layer is fetched once)."""
    name = release.repository.path.rsplit("/", 1)[-1]
    platforms = image_contents(registry, release.repository.path, release.digest)
    wheel = wheel_of(release, platforms, dist_dir)
    contents = ImageContents(release.repository.name, release.digest, wheel, platforms)
    return write(build_dir / "sbom" / f"{name}.cdx.json", cyclonedx(contents))


def publish(
    release: Release,
    *,
    sbom: Path,
    key: str,
    cosign: Cosign,
    registry: RegistryClient,
    factory: RegistryFactory,
    build_dir: Path,
    env: Mapping[str, str],
) -> Published:
    """--sign: `sbom` is the one write_sbom wrote for this release."""
    name = release.repository.path.rsplit("/", 1)[-1]
    pinned = f"{release.repository.name}@{release.digest}"
    prov = write(build_dir / "provenance" / f"{name}.slsa.json", provenance(release.facts))
    cosign.sign(pinned, key)
    cosign.attest(pinned, key, sbom, SBOM)
    cosign.attest(pinned, key, prov, PROVENANCE)
    buildx = []  # where buildx built the image: its own provenance, one per platform
    for number, predicate in enumerate(
        buildx_provenance(registry, release.repository.path, release.digest), start=1
    ):
        path = build_dir / "provenance" / f"{name}.buildx-{number}.slsa02.json"
        path.write_bytes(predicate)
        cosign.attest(pinned, key, path, BUILDX_PROVENANCE_TYPE)
        buildx.append(path)
    if key == KEYLESS:  # verified as a consumer would: the workflow's identity
        public, against = None, keyless_identity(env)
    else:
        public = cosign.public_key(key, build_dir / "sign" / "cosign.pub")
        against = str(public)
    result = verify(release.ref, against, cosign, factory)
    return Published(sbom, prov, public, result.lines, tuple(buildx))
