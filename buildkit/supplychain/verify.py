"""`python -m buildkit verify REF --key cosign.pub`: is this the image that was built, by
whom, from what? Resolves REF in its registry, then checks, one line each:

    signature   a signature by the key over this digest
    sbom        a CycloneDX attestation signed by the key, about this digest, whose
                document describes this digest
    provenance  an SLSA provenance attestation signed by the key, about this digest,
                naming the commit of the image's revision label

It holds only if every line does. A tag moved to another image, a missing or foreign
signature, or an SBOM written for another digest each fail their line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from buildkit.errors import RegistryError, UsageError
from buildkit.registry.client import RegistryClient
from buildkit.registry.reference import Repository, check_reference, parse_registry
from buildkit.supplychain.cosign import KEYLESS, PROVENANCE, SBOM, Cosign, require_cosign
from buildkit.supplychain.statements import Statement, provenance_commit, sbom_digest

REVISION = "org.opencontainers.image.revision"
RegistryFactory = Callable[[str], RegistryClient]


@dataclass(frozen=True)
class Line:
    check: str
    ok: bool
    detail: str

    def render(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.check:<11} {self.detail}"


@dataclass(frozen=True)
class Resolved:
    repository: Repository
    digest: str
    revision: str

    @property
    def pinned(self) -> str:
        return f"{self.repository.name}@{self.digest}"


@dataclass(frozen=True)
class Verification:
    ref: str
    lines: tuple[Line, ...]

    @property
    def ok(self) -> bool:
        return bool(self.lines) and all(line.ok for line in self.lines)


def check_public_key(key: str, env: Mapping[str, str]) -> None:
    """The key `verify` checks with names something, and cosign is there to use it."""
    if key.startswith("env://"):
        variable = key.removeprefix("env://")
        if not env.get(variable):
            raise UsageError(f"--key {key}: {variable} is not set or empty")
    elif not key.startswith(f"{KEYLESS}:") and not Path(key).is_file():
        raise UsageError(
            f"--key {key!r}: no such file",
            hint="give the public key cosign made (cosign.pub), env://VAR holding it, or "
            "keyless:<workflow identity> for a keyless signature made on GitHub Actions",
        )
    require_cosign("verify")


def split_ref(ref: str) -> tuple[Repository, str]:
    """REF as repository and tag or digest (`latest` when it names neither)."""
    check_reference(ref, "REF")
    name, _, digest = ref.partition("@")
    tag = "latest"
    if ":" in name.rsplit("/", 1)[-1]:
        name, _, tag = name.rpartition(":")
    return parse_registry(name, "REF"), digest or tag


def resolve(ref: str, registry: RegistryFactory) -> Resolved:
    repository, reference = split_ref(ref)
    with registry(repository.domain) as client:
        manifest = client.manifest(repository.path, reference)
        image = manifest
        if manifest.is_index:  # the revision is the same on every platform; read the first
            platforms = [
                entry for entry in manifest.data.get("manifests", [])
                if entry.get("platform", {}).get("os") not in (None, "unknown")
            ]  # fmt: skip
            if not platforms:
                raise RegistryError(f"{ref} is an index of no platform image")
            image = client.manifest(repository.path, platforms[0]["digest"])
        labels = client.config(repository.path, image).get("config", {}).get("Labels") or {}
    return Resolved(repository, manifest.digest, str(labels.get(REVISION, "")))


def signature_line(cosign: Cosign, image: Resolved, key: str) -> Line:
    verified = cosign.verify(image.pinned, key)
    if not verified.ok:
        return Line("signature", False, f"no signature by {key} verifies: {verified.reason}")
    if image.digest not in verified.digests:
        return Line(
            "signature", False, f"the signatures name {verified.digests}, not {image.digest}"
        )
    logged = (
        "certificate and Rekor entry checked"
        if key.startswith(f"{KEYLESS}:")
        else ("no transparency log checked")
    )
    return Line("signature", True, f"signed by {key} ({logged})")


def attested(cosign: Cosign, image: Resolved, key: str, kind: str) -> tuple[Statement, ...] | Line:
    found = cosign.attestations(image.pinned, key, kind)
    name = "sbom" if kind == SBOM else "provenance"
    if isinstance(found, str):
        return Line(name, False, f"no {kind} attestation signed by {key}: {found}")
    about = tuple(statement for statement in found if statement.names(image.digest))
    if not about:
        return Line(
            name, False, f"the {kind} attestations are about other digests, not {image.digest}"
        )
    return about


def sbom_line(cosign: Cosign, image: Resolved, key: str) -> Line:
    found = attested(cosign, image, key, SBOM)
    if isinstance(found, Line):
        return found
    described = {sbom_digest(statement) for statement in found}
    if image.digest not in described:
        named = ", ".join(sorted(d or "no digest" for d in described))
        return Line("sbom", False, f"the SBOM describes {named}, not this image {image.digest}")
    return Line("sbom", True, f"CycloneDX, signed, describes {image.digest}")


def provenance_line(cosign: Cosign, image: Resolved, key: str) -> Line:
    found = attested(cosign, image, key, PROVENANCE)
    if isinstance(found, Line):
        return found
    if not image.revision:
        return Line("provenance", False, f"the image has no {REVISION} label to compare with")
    commits = {provenance_commit(statement) for statement in found}
    if image.revision not in commits:
        named = ", ".join(sorted(c or "no commit" for c in commits))
        return Line("provenance", False, f"built from {named}, but the image says {image.revision}")
    return Line("provenance", True, f"SLSA, signed, built from commit {image.revision}")


def verify(ref: str, key: str, cosign: Cosign, registry: RegistryFactory) -> Verification:
    try:
        image = resolve(ref, registry)
    except RegistryError as exc:
        return Verification(ref, (Line("resolve", False, exc.message),))
    lines = (
        Line("resolve", True, f"{ref} -> {image.digest}"),
        signature_line(cosign, image, key),
        sbom_line(cosign, image, key),
        provenance_line(cosign, image, key),
    )
    return Verification(ref, lines)
