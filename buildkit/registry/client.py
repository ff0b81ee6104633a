"""OCI distribution API client (httpx): read back what was pushed; push blobs and manifests.

    RegistryError
      raised for: unreachable registry, refused credentials (401/403), a missing
      manifest or blob (404), or an answer that is not what the API promises.

Authentication follows the registry's challenge: `Basic` gets the credentials directly,
`Bearer realm=...` gets a token from the realm first (ghcr.io, Docker Hub, distribution
with token auth). Loopback registries are spoken to over plain HTTP, others over HTTPS.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from buildkit.errors import RegistryError
from buildkit.registry.credentials import Credentials
from buildkit.registry.reference import Repository

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[:2]
CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
EMPTY_BLOB = "sha256:" + hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    body: bytes

    @property
    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


class RegistryClient:
    def __init__(
        self,
        domain: str,
        credentials: Credentials | None = None,
        *,
        client: httpx.Client | None = None,
        scheme: str | None = None,
    ) -> None:
        self.domain = domain
        self.credentials = credentials
        loopback = Repository(domain, "x").is_loopback
        self.base = f"{scheme or ('http' if loopback else 'https')}://{domain}"
        self.netloc = httpx.URL(self.base).netloc
        self.http = client or httpx.Client(timeout=TIMEOUT, follow_redirects=True)
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------
    def manifest(self, path: str, reference: str) -> Manifest:
        response = self._request(
            "GET",
            path,
            f"/v2/{path}/manifests/{reference}",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        self._expect(response, 200, f"manifest {path}:{reference}")
        body = response.content
        digest = response.headers.get("Docker-Content-Digest") or digest_of(body)
        if digest != digest_of(body):
            raise RegistryError(
                f"{self.domain} answered manifest {path}:{reference} with "
                f"digest {digest} but its body hashes to {digest_of(body)}"
            )
        if reference.startswith("sha256:") and digest != reference:
            # A pinned reference is a promise about content: a registry (or a proxy) that
            # answers another manifest must not make buildkit vouch for what it sent.
            raise RegistryError(
                f"{self.domain} answered manifest {path}@{reference} with another manifest, "
                f"{digest}"
            )
        media_type = response.headers.get("Content-Type", "").split(";")[0]
        return Manifest(digest, media_type or json.loads(body).get("mediaType", ""), body)

    def blob(self, path: str, digest: str) -> bytes:
        response = self._request("GET", path, f"/v2/{path}/blobs/{digest}")
        self._expect(response, 200, f"blob {digest} of {path}")
        if digest_of(response.content) != digest:
            raise RegistryError(f"blob {digest} of {path} does not match its digest")
        return response.content

    def config(self, path: str, manifest: Manifest) -> dict[str, Any]:
        """The image config (architecture, os, labels) an image manifest points to."""
        config: dict[str, Any] = json.loads(self.blob(path, manifest.data["config"]["digest"]))
        return config

    # -- writing ----------------------------------------------------------------------
    def put_manifest(self, path: str, reference: str, body: bytes, media_type: str) -> str:
        response = self._request(
            "PUT",
            path,
            f"/v2/{path}/manifests/{reference}",
            headers={"Content-Type": media_type},
            content=body,
            push=True,
        )
        self._expect(response, 201, f"pushing manifest {path}:{reference}")
        return response.headers.get("Docker-Content-Digest") or digest_of(body)

    def check_push_access(self, path: str) -> None:
        """Raise now when the registry refuses to let these credentials push to `path`:
        asks, with push scope, for a blob nobody has (a 404 is the expected answer)."""
        self.has_blob(path, EMPTY_BLOB)

    def has_blob(self, path: str, digest: str) -> bool:
        response = self._request("HEAD", path, f"/v2/{path}/blobs/{digest}", push=True)
        if response.status_code == 404:
            return False
        self._expect(response, 200, f"looking up blob {digest} of {path}")
        return True

    def upload_blob(
        self, path: str, digest: str, size: int, chunks: Callable[[], Iterable[bytes]]
    ) -> None:
        """A monolithic upload (POST, then PUT with the digest) of `size` bytes."""
        started = self._request("POST", path, f"/v2/{path}/blobs/uploads/", push=True)
        self._expect(started, 202, f"starting the upload of {digest} to {path}")
        if not started.headers.get("Location"):
            raise RegistryError(f"{self.domain} started an upload to {path} without a Location")
        location = urljoin(str(started.url), started.headers["Location"])
        separator = "&" if "?" in location else "?"
        finished = self._request(
            "PUT",
            path,
            f"{location}{separator}digest={digest}",
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            content=chunks,
            push=True,
        )
        self._expect(finished, 201, f"uploading blob {digest} to {path}")

    # -- plumbing ---------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | Callable[[], Iterable[bytes]] | None = None,
        push: bool = False,
    ) -> httpx.Response:
        """`url` is absolute or relative to the registry. A callable `content` is called
        per attempt, so a stream can be sent again after an authentication challenge."""
        scope = f"repository:{path}:{'pull,push' if push else 'pull'}"
        headers = dict(headers or {})
        target = url if "://" in url else self.base + url
        ours = httpx.URL(target).netloc == self.netloc
        for attempt in range(2):
            auth = self._tokens.get(scope)
            if auth and ours:  # an upload Location elsewhere never gets our credentials
                headers["Authorization"] = auth
            body = content() if callable(content) else content
            try:
                response = self.http.request(method, target, headers=headers, content=body)
            except httpx.HTTPError as exc:
                raise RegistryError(
                    f"registry {self.domain} is unreachable: {exc.__class__.__name__}: {exc}",
                    hint="check the registry address (-r) and that the registry is running",
                ) from exc
            if response.status_code != 401 or attempt == 1:
                return response
            self._tokens[scope] = self._authorize(response, scope)
        return response

    def _authorize(self, challenge: httpx.Response, scope: str) -> str:
        header = challenge.headers.get("WWW-Authenticate", "")
        scheme, _, params_text = header.partition(" ")
        if self.credentials is None and scheme.lower() == "basic":
            raise self._refused("no credentials were given")
        if scheme.lower() == "basic":
            assert self.credentials is not None
            pair = f"{self.credentials.username}:{self.credentials.password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        if scheme.lower() != "bearer":
            raise RegistryError(f"registry {self.domain} asks for unsupported auth {header!r}")
        params = dict(CHALLENGE_PARAM.findall(params_text))
        query = {"service": params.get("service", ""), "scope": params.get("scope", scope)}
        basic = None
        if self.credentials is not None:
            basic = httpx.BasicAuth(self.credentials.username, self.credentials.password)
        try:
            answer = self.http.get(params["realm"], params=query, auth=basic)
        except (KeyError, httpx.HTTPError) as exc:
            raise RegistryError(f"getting a token from {self.domain} failed: {exc}") from exc
        if answer.status_code in (401, 403):
            raise self._refused(f"token service answered {answer.status_code}")
        token = answer.json().get("token") or answer.json().get("access_token")
        if not token:
            raise RegistryError(f"the token service of {self.domain} returned no token")
        return f"Bearer {token}"

    def _refused(self, why: str) -> RegistryError:
        return RegistryError(
            f"registry {self.domain} refused the credentials ({why})",
            hint=f"set BUILDKIT_REGISTRY_USERNAME/BUILDKIT_REGISTRY_PASSWORD or run "
            f"`docker login {self.domain}`",
        )

    def _expect(self, response: httpx.Response, status: int, what: str) -> None:
        if response.status_code == status:
            return
        if response.status_code in (401, 403):
            raise self._refused(f"{what}: HTTP {response.status_code}")
        raise RegistryError(
            f"{what}: registry {self.domain} answered HTTP {response.status_code}: "
            f"{response.text[:300]}"
        )


# How stages get a registry client: RegistryClient itself, or in a test one whose httpx
# client has a MockTransport.
RegistryFactory = Callable[[str, Credentials | None], RegistryClient]
