"""The cosign seam (cosign 2.x, Debian 13's 2.5 here): every call goes through the
injected Runner, argument lists only. A key is a path or `env://VAR` (cosign reads the key
from that variable); its password comes from COSIGN_PASSWORD, never from buildkit.

Keyless: signing with the key `keyless` makes cosign take the ambient OIDC token (GitHub
Actions' with `id-token: write`) for a short-lived Fulcio certificate, and log the
signature in Rekor. Verifying with `keyless:<identity>` accepts only a certificate GitHub's
token issuer gave that identity (a workflow file at a ref), checked against Rekor."""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from buildkit.errors import StageFailed, ToolMissingError
from buildkit.proc import CallResult, Runner
from buildkit.supplychain.statements import Statement, lookup


def require_cosign(what: str) -> None:
    """cosign on the PATH, else the error that says how to get it."""
    if shutil.which("cosign") is None:
        raise ToolMissingError(
            f"{what}: cosign is not installed or not on PATH",
            hint="bash ci/release-tools.sh installs Debian 13's cosign 2.5 (or see sigstore.dev)",
        )


SBOM = "cyclonedx"
PROVENANCE = "slsaprovenance1"
BUILDX_PROVENANCE_TYPE = "slsaprovenance"  # SLSA v0.2, what buildx 0.13 writes
PREDICATE_TYPES = {
    SBOM: "https://cyclonedx.org/bom",
    PROVENANCE: "https://slsa.dev/provenance/v1",
}
NO_TLOG = "no transparency log (offline): checked against the key alone"
KEYLESS = "keyless"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def signing_args(key: str) -> list[str]:
    """How `cosign sign`/`attest` is told who signs: a private key, without a transparency
    log (offline); or, for KEYLESS, nothing: cosign uses the ambient OIDC identity."""
    return [] if key == KEYLESS else ["--key", key, "--tlog-upload=false"]


def verifying_args(key: str) -> list[str]:
    """How `cosign verify` is told whom to trust: `keyless:<identity>` (a certificate for
    that identity from GitHub's token issuer, and Rekor), else a public key (no log)."""
    if key.startswith(f"{KEYLESS}:"):
        identity = key.removeprefix(f"{KEYLESS}:")
        return ["--certificate-identity", identity, "--certificate-oidc-issuer", GITHUB_ISSUER]
    return ["--key", key, "--insecure-ignore-tlog"]


def keyless_identity(env: Mapping[str, str]) -> str:
    """The verifying key for what this GitHub Actions run signs keylessly: its workflow
    file at its ref (`keyless:https://github.com/OWNER/REPO/.github/workflows/x.yml@REF`)."""
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    return f"{KEYLESS}:{server}/{env.get('GITHUB_WORKFLOW_REF', '')}"


@dataclass(frozen=True)
class Verified:
    """What `cosign verify` accepted: the digests the valid signatures name."""

    ok: bool
    digests: tuple[str, ...]
    reason: str = ""


@dataclass(frozen=True)
class Cosign:
    runner: Runner
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 120.0

    def _call(self, *args: str) -> CallResult:
        return self.runner.call(["cosign", *args], env=dict(self.env), timeout=self.timeout)

    def _must(self, result: CallResult, what: str) -> None:
        if not result.ok:
            raise StageFailed(
                f"cosign could not {what}", command=result.command, output=result.tail()
            )

    def sign(self, image: str, key: str) -> None:
        """Sign `image` (repository@digest) with the private key."""
        self._must(self._call("sign", *signing_args(key), "--yes", image), f"sign {image}")

    def attest(self, image: str, key: str, predicate: Path, kind: str) -> None:
        """Attach `predicate` to `image` as a signed in-toto statement of type `kind`."""
        self._must(
            self._call("attest", *signing_args(key), "--yes",
                       "--type", kind, "--predicate", str(predicate), image),
            f"attach the {kind} attestation to {image}",
        )  # fmt: skip

    def public_key(self, key: str, out: Path) -> Path:
        """Write the public half of the private `key` to `out` (for verify)."""
        out.parent.mkdir(parents=True, exist_ok=True)
        # Push steps run side by side and each writes this file: written aside, then
        # renamed, so another step's verify never reads it half-written.
        staged = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}")
        self._must(self._call("public-key", "--key", key, "--outfile", str(staged)), "read the key")
        os.replace(staged, out)
        return out

    def verify(self, image: str, public_key: str) -> Verified:
        result = self._call("verify", *verifying_args(public_key), "--output", "json", image)
        if not result.ok:
            return Verified(False, (), last_error(result))
        digests = []
        for item in json_lines(result.output):
            for entry in item if isinstance(item, list) else [item]:
                digest = lookup(entry, "critical", "image", "docker-manifest-digest")
                if isinstance(digest, str):
                    digests.append(digest)
        return Verified(True, tuple(digests))

    def attestations(self, image: str, public_key: str, kind: str) -> tuple[Statement, ...] | str:
        """The statements of type `kind` signed by the key, or why there are none."""
        result = self._call(
            "verify-attestation", *verifying_args(public_key), "--type", kind, image
        )
        if not result.ok:
            return last_error(result)
        statements = []
        for envelope in json_lines(result.output):
            if isinstance(envelope, dict) and "payload" in envelope:
                payload = json.loads(base64.b64decode(envelope["payload"]))
                statements.append(Statement.from_json(payload))
        return tuple(statements)


def json_lines(output: str) -> list[object]:
    """cosign prints its JSON results one per line, between its own log lines."""
    found: list[object] = []
    for line in output.splitlines():
        stripped = line.strip()
        if stripped.startswith(("{", "[")):
            try:
                found.append(json.loads(stripped))
            except json.JSONDecodeError:
                continue
    return found


def last_error(result: CallResult) -> str:
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error")]
    return (errors or lines or ["cosign failed without a message"])[-1]
