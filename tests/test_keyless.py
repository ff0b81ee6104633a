"""`--sign-key keyless`, the release workflow's signing: cosign is told no key, so it signs
with a Fulcio certificate for the job's GitHub OIDC identity and logs it in Rekor; the
push stage's `verify` (and a consumer's) then names that identity and GitHub's token
issuer instead of a public key. Neither Fulcio, Rekor nor an OIDC token is reachable here
(tests talk to loopback only), so what is tested is how cosign is called and the refusal
outside GitHub Actions; key-based signing runs for real in tests/test_sign_push.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit.errors import UsageError
from buildkit.supplychain.cosign import (
    GITHUB_ISSUER,
    KEYLESS,
    keyless_identity,
    signing_args,
    verifying_args,
)
from buildkit.supplychain.signing import OIDC_REQUEST, key_of
from buildkit.supplychain.verify import check_public_key
from tests.helpers import copy_fixture, run_buildkit

WORKFLOW = "5dlabs/platform/.github/workflows/release.yml@refs/tags/v1.2.3"
IDENTITY = f"https://github.com/{WORKFLOW}"


def test_keyless_signing_gives_cosign_no_key_and_keeps_the_transparency_log() -> None:
    assert signing_args(KEYLESS) == []
    assert signing_args("cosign.key") == ["--key", "cosign.key", "--tlog-upload=false"]
    assert signing_args("env://COSIGN_KEY") == ["--key", "env://COSIGN_KEY", "--tlog-upload=false"]


def test_keyless_verification_names_the_workflow_identity_and_githubs_issuer() -> None:
    env = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_WORKFLOW_REF": WORKFLOW}
    verifier = keyless_identity(env)
    assert verifier == f"keyless:{IDENTITY}"
    assert verifying_args(verifier) == [
        "--certificate-identity", IDENTITY,
        "--certificate-oidc-issuer", "https://token.actions.githubusercontent.com",
    ]  # fmt: skip
    assert GITHUB_ISSUER == "https://token.actions.githubusercontent.com"
    assert verifying_args("cosign.pub") == ["--key", "cosign.pub", "--insecure-ignore-tlog"]
    check_public_key(verifier, {})  # `verify --key keyless:<identity>` is accepted as a key


def test_keyless_is_accepted_where_github_hands_out_an_oidc_token() -> None:
    env = {OIDC_REQUEST: "https://token.actions.example/request"}
    assert key_of(True, KEYLESS, env, push=True) == KEYLESS


def test_keyless_without_an_oidc_token_says_where_it_works() -> None:
    with pytest.raises(UsageError) as refused:
        key_of(True, KEYLESS, {}, push=True)
    assert "ACTIONS_ID_TOKEN_REQUEST_URL is not set" in refused.value.message
    assert "id-token: write" in (refused.value.hint or "")


def test_the_cli_refuses_keyless_signing_outside_github_actions(tmp_path: Path) -> None:
    mini = copy_fixture("miniproject", tmp_path / "mini")
    result = run_buildkit(
        "images", "-p", "--sign", "--sign-key", "keyless", "-r", "localhost:5000/none",
        cwd=mini.path, env={OIDC_REQUEST: ""},
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--sign-key keyless: no OIDC token to sign with" in result.stderr
