"""buildkit's OCI distribution client against a real registry (htpasswd: Basic auth) and,
for the Bearer token flow that no registry here offers, an httpx MockTransport standing
in for a token-auth registry such as ghcr.io."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from buildkit.errors import RegistryError
from buildkit.registry.client import RegistryClient, digest_of
from buildkit.registry.credentials import Credentials
from tests.registries import free_port, private_registry

INDEX = "application/vnd.oci.image.index.v1+json"


def empty_index() -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": []}).encode()


def test_push_and_read_an_index_with_basic_auth(tmp_path: Path) -> None:
    with private_registry(tmp_path, username="robot", password="right") as registry:
        creds = Credentials("robot", "right")
        with RegistryClient(registry.address, creds) as client:
            body = empty_index()
            digest = client.put_manifest("team/app", "v1", body, INDEX)
            assert digest == digest_of(body)
            manifest = client.manifest("team/app", "v1")
        assert manifest.digest == digest
        assert manifest.is_index
        assert manifest.data["manifests"] == []


def test_wrong_password_is_refused_with_a_fix(tmp_path: Path) -> None:
    with (
        private_registry(tmp_path, username="robot", password="right") as registry,
        RegistryClient(registry.address, Credentials("robot", "wrong")) as client,
        pytest.raises(RegistryError) as caught,
    ):
        client.manifest("team/app", "v1")
    assert "refused the credentials" in str(caught.value)
    assert "docker login" in str(caught.value)
    assert "wrong" not in str(caught.value)


def test_no_credentials_for_a_protected_registry(tmp_path: Path) -> None:
    with (
        private_registry(tmp_path, username="robot", password="right") as registry,
        RegistryClient(registry.address) as client,
        pytest.raises(RegistryError, match="no credentials were given"),
    ):
        client.manifest("team/app", "v1")


def test_missing_tag_is_a_404_error(tmp_path: Path) -> None:
    with (
        private_registry(tmp_path) as registry,
        RegistryClient(registry.address) as client,
        pytest.raises(RegistryError, match="answered HTTP 404"),
    ):
        client.manifest("team/app", "nope")


def test_unreachable_registry() -> None:
    with (
        RegistryClient(f"127.0.0.1:{free_port()}") as client,
        pytest.raises(RegistryError, match="is unreachable"),
    ):
        client.manifest("team/app", "v1")


def test_bearer_token_flow() -> None:
    body = empty_index()
    seen: list[str] = []

    def registry(request: httpx.Request) -> httpx.Response:
        seen.append(
            f"{request.method} {request.url.path} {request.headers.get('Authorization', '')}"
        )
        if request.url.host == "auth.example.test":
            assert request.url.params["scope"] == "repository:org/app:pull"
            assert request.headers["Authorization"].startswith("Basic ")
            return httpx.Response(200, json={"token": "tok123"})
        if request.headers.get("Authorization") != "Bearer tok123":
            return httpx.Response(
                401,
                headers={
                    "WWW-Authenticate": (
                        'Bearer realm="https://auth.example.test/token",service="registry.example.test",'
                        'scope="repository:org/app:pull"'
                    )
                },
            )
        return httpx.Response(
            200,
            content=body,
            headers={"Content-Type": INDEX, "Docker-Content-Digest": digest_of(body)},
        )

    client = RegistryClient(
        "registry.example.test",
        Credentials("u", "p"),
        client=httpx.Client(transport=httpx.MockTransport(registry)),
    )
    with client:
        assert client.manifest("org/app", "v1").digest == digest_of(body)
        assert client.manifest("org/app", "v2").is_index  # the token is reused
    assert seen == [
        "GET /v2/org/app/manifests/v1 ",
        "GET /token Basic dTpw",
        "GET /v2/org/app/manifests/v1 Bearer tok123",
        "GET /v2/org/app/manifests/v2 Bearer tok123",
    ]


def test_a_digest_that_does_not_match_the_body_is_caught() -> None:
    def registry(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=empty_index(),
            headers={"Content-Type": INDEX, "Docker-Content-Digest": "sha256:" + "0" * 64},
        )

    with (
        RegistryClient(
            "registry.example.test", client=httpx.Client(transport=httpx.MockTransport(registry))
        ) as client,
        pytest.raises(RegistryError, match="hashes to"),
    ):
        client.manifest("org/app", "v1")


def test_a_pinned_reference_answered_with_another_manifest_is_refused() -> None:
    """`verify REF@sha256:A` must never vouch for the manifest B a registry sent instead,
    even when B is self-consistent (its header and body agree)."""
    body = empty_index()

    def registry(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=body,
            headers={"Content-Type": INDEX, "Docker-Content-Digest": digest_of(body)},
        )

    asked = "sha256:" + "a" * 64
    with (
        RegistryClient(
            "registry.example.test", client=httpx.Client(transport=httpx.MockTransport(registry))
        ) as client,
    ):
        with pytest.raises(RegistryError, match=f"@{asked} with another manifest"):
            client.manifest("org/app", asked)
        assert client.manifest("org/app", digest_of(body)).digest == digest_of(body)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("u1?_state=x", "http://registry.test/v2/org/app/blobs/uploads/u1?_state=x&digest="),
        (
            "/v2/org/app/blobs/uploads/u2",
            "http://registry.test/v2/org/app/blobs/uploads/u2?digest=",
        ),
        ("http://storage.test/put?sig=1", "http://storage.test/put?sig=1&digest="),
    ],
)
def test_an_upload_follows_its_location_and_keeps_credentials_home(
    location: str, expected: str
) -> None:
    """A relative Location resolves against the upload URL (RFC 9110); an upload sent to
    another host (object storage) never carries the registry's credentials."""
    seen: list[httpx.Request] = []

    def registry(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "Authorization" not in request.headers and request.url.host == "registry.test":
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": location})
        return httpx.Response(201)

    body = b"layer bytes"
    client = httpx.Client(transport=httpx.MockTransport(registry))
    with RegistryClient(
        "registry.test", Credentials("robot", "secret"), client=client, scheme="http"
    ) as registry_client:
        registry_client.upload_blob("org/app", digest_of(body), len(body), lambda: [body])
    put = seen[-1]
    assert put.method == "PUT"
    assert str(put.url) == expected + digest_of(body)
    assert put.content == body
    assert ("Authorization" in put.headers) == (put.url.host == "registry.test")


def test_an_upload_without_a_location_is_a_clear_error() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(202)))
    with (
        RegistryClient("registry.test", client=client, scheme="http") as registry_client,
        pytest.raises(RegistryError, match="without a Location"),
    ):
        registry_client.upload_blob("org/app", digest_of(b"x"), 1, lambda: [b"x"])
