"""--sign: which key signs, checked before anything is built; and, after a push, signing
the pushed digest, attaching its SBOM and provenance, and verifying all of it.

The key is a cosign private key: `--sign-key`, else BUILDKIT_SIGN_KEY; a file, or
`env://VAR` (cosign reads the key from that variable). Its password is COSIGN_PASSWORD,
which cosign reads itself. No transparency log is written (`--tlog-upload=false`).
Or `keyless`, in a GitHub Actions job with `id-token: write`: cosign signs with a Fulcio
certificate for the workflow's OIDC identity and logs the signature in Rekor."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from buildkit.errors import UsageError
from buildkit.supplychain.cosign import KEYLESS, require_cosign

KEY_ENV = "BUILDKIT_SIGN_KEY"
OIDC_REQUEST = "ACTIONS_ID_TOKEN_REQUEST_URL"  # set in GitHub Actions jobs with id-token: write


def key_of(sign: bool, option: str | None, env: Mapping[str, str], *, push: bool) -> str:
    """The key --sign signs with ("" without --sign); a usage error names what is wrong."""
    key = option or env.get(KEY_ENV, "")
    if not sign:
        if option:
            raise UsageError("--sign-key without --sign signs nothing", hint="add --sign")
        return ""
    if not push:
        raise UsageError(
            "--sign without --push: only a pushed digest can be signed", hint="add -p/--push"
        )
    if not key:
        raise UsageError(
            f"--sign needs a cosign private key: --sign-key or {KEY_ENV} is not set",
            hint="make one with `cosign generate-key-pair`, then --sign-key cosign.key "
            "(or env://VAR naming a variable that holds it)",
        )
    require_cosign("--sign")
    source = "--sign-key" if option else KEY_ENV
    if key == KEYLESS:
        if not env.get(OIDC_REQUEST):
            raise UsageError(
                f"{source} {KEYLESS}: no OIDC token to sign with ({OIDC_REQUEST} is not set)",
                hint="sign keylessly in a GitHub Actions job with `permissions: id-token: "
                "write`; elsewhere give a private key",
            )
    elif key.startswith("env://"):
        variable = key.removeprefix("env://")
        if not env.get(variable):
            raise UsageError(f"{source} {key}: {variable} is not set or empty")
    elif not Path(key).is_file():
        raise UsageError(
            f"{source} {key!r}: no such file",
            hint="give the private key `cosign generate-key-pair` wrote (cosign.key)",
        )
    return key
