"""An OCI distribution registry in memory, behind httpx's MockTransport: the seam for fast
unit tests of buildkit's push and verification logic (RegistryClient takes the client).
The real registry (docker-registry on 127.0.0.1:5000) is what the image tests use; this
one exists for cases a real registry will not hold on request (a crafted index, a
registry that refuses or lies) and for tests that must run in milliseconds.

It speaks the calls buildkit makes: manifests GET/HEAD/PUT by tag or digest, blobs
GET/HEAD, and monolithic uploads (POST, then PUT ?digest=). Every request is recorded."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from buildkit.registry.client import RegistryClient
from buildkit.registry.credentials import Credentials

MANIFEST_URL = re.compile(r"^/v2/(?P<path>.+)/manifests/(?P<ref>[^/]+)$")
BLOB_URL = re.compile(r"^/v2/(?P<path>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
UPLOAD_URL = re.compile(r"^/v2/(?P<path>.+)/blobs/uploads/(?P<id>[^/]*)$")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


@dataclass
class MemoryRegistry:
    domain: str = "registry.test"
    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    uploads: int = 0
    refused: set[str] = field(default_factory=set)  # tags whose PUT is answered 403
    forgotten: set[str] = field(default_factory=set)  # tags whose PUT is answered 201, unkept
    clients: list[tuple[str, object]] = field(default_factory=list)  # (domain, credentials)

    def client(self) -> RegistryClient:
        transport = httpx.MockTransport(self.handle)
        return RegistryClient(self.domain, client=httpx.Client(transport=transport))

    def factory(self, domain: str, credentials: Credentials | None) -> RegistryClient:
        """A RegistryFactory (what a step context makes its registry clients with)."""
        self.clients.append((domain, credentials))
        transport = httpx.MockTransport(self.handle)
        return RegistryClient(domain, credentials, client=httpx.Client(transport=transport))

    # -- arranging what the registry holds ------------------------------------------------
    def put_manifest(self, path: str, ref: str, data: dict[str, Any]) -> str:
        body = json.dumps(data).encode()
        self.manifests[(path, digest(body))] = (data["mediaType"], body)
        self.manifests[(path, ref)] = (data["mediaType"], body)
        return digest(body)

    def image(self, path: str, platform: str, labels: dict[str, str]) -> str:
        """An image manifest for `platform` whose config carries `labels`; its digest."""
        os_name, arch = platform.split("/")
        config = json.dumps(
            {"os": os_name, "architecture": arch, "config": {"Labels": labels}}
        ).encode()
        self.blobs[digest(config)] = config
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest(config), "size": len(config)},
            "layers": [],
        }
        return self.put_manifest(path, digest(json.dumps(manifest).encode()), manifest)

    def tags(self, path: str) -> list[str]:
        return sorted(ref for (p, ref) in self.manifests if p == path and ":" not in ref)

    # -- the HTTP API -----------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        url = request.url.path
        self.requests.append(f"{request.method} {url}")
        if found := MANIFEST_URL.match(url):
            return self.manifest(request, found["path"], found["ref"])
        if found := BLOB_URL.match(url):
            body = self.blobs.get(found["digest"])
            if body is None:
                return httpx.Response(404, json={"errors": [{"code": "BLOB_UNKNOWN"}]})
            return httpx.Response(200, content=b"" if request.method == "HEAD" else body)
        if found := UPLOAD_URL.match(url):
            if request.method == "POST":
                self.uploads += 1
                location = f"/v2/{found['path']}/blobs/uploads/u{self.uploads}"
                return httpx.Response(202, headers={"Location": location})
            body = request.read()
            if digest(body) != request.url.params["digest"]:
                return httpx.Response(400, json={"errors": [{"code": "DIGEST_INVALID"}]})
            self.blobs[digest(body)] = body
            return httpx.Response(201)
        return httpx.Response(404)

    def manifest(self, request: httpx.Request, path: str, ref: str) -> httpx.Response:
        if request.method == "PUT" and ref in self.refused:
            return httpx.Response(403, json={"errors": [{"code": "DENIED"}]})
        if request.method == "PUT" and ref in self.forgotten:
            return httpx.Response(201, headers={"Docker-Content-Digest": digest(request.read())})
        if request.method == "PUT":
            body = request.read()
            media_type = request.headers["Content-Type"]
            self.manifests[(path, ref)] = (media_type, body)
            self.manifests[(path, digest(body))] = (media_type, body)
            return httpx.Response(201, headers={"Docker-Content-Digest": digest(body)})
        if (path, ref) not in self.manifests:
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        media_type, body = self.manifests[(path, ref)]
        headers = {"Content-Type": media_type, "Docker-Content-Digest": digest(body)}
        return httpx.Response(200, headers=headers, content=body)
