"""Real registries for tests: the shared one on 127.0.0.1:5000 (ci/prepare-machine.sh
starts it) and private ones a test starts itself, with or without htpasswd auth."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import httpx

from tests.helpers import require

SHARED_REGISTRY = "127.0.0.1:5000"
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(address: str) -> bool:
    try:
        return httpx.get(f"http://{address}/v2/", timeout=2).status_code in (200, 401)
    except httpx.HTTPError:
        return False


def require_shared_registry() -> str:
    require(
        answers(SHARED_REGISTRY),
        f"no registry on {SHARED_REGISTRY}; run `bash ci/prepare-machine.sh`",
    )
    return SHARED_REGISTRY


@dataclass
class PrivateRegistry:
    address: str
    username: str = ""
    password: str = ""


@contextmanager
def private_registry(
    tmp: Path, *, username: str = "", password: str = ""
) -> Iterator[PrivateRegistry]:
    """A registry process of our own on a free loopback port; htpasswd when a user is given."""
    binary = shutil.which("docker-registry")
    require(
        binary is not None, "docker-registry is not installed; run `bash ci/prepare-machine.sh`"
    )
    assert binary is not None
    tmp.mkdir(parents=True, exist_ok=True)
    address = f"127.0.0.1:{free_port()}"
    auth = ""
    if username:
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        (tmp / "htpasswd").write_text(f"{username}:{hashed}\n")
        auth = f"auth: {{htpasswd: {{realm: buildkit-test, path: {tmp / 'htpasswd'}}}}}\n"
    config = tmp / "registry.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: {address}}}\n{auth}"
    )
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while not answers(address):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test registry on {address} did not start")
            time.sleep(0.05)
        yield PrivateRegistry(address, username, password)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def registry_json(path: str, reference: str, kind: str = "manifests") -> dict[str, Any]:
    """A manifest (or, with kind="blobs", a JSON blob) of the shared registry, as it holds it."""
    response = httpx.get(
        f"http://{SHARED_REGISTRY}/v2/{path}/{kind}/{reference}",
        headers={"Accept": ", ".join(MANIFEST_TYPES)},
        timeout=10,
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


@dataclass(frozen=True)
class LayerEntry:
    """What an image's layers leave at one path: owner, mode bits, mtime, a file's bytes."""

    uid: int
    mode: int
    mtime: int
    content: bytes | None


def top_layer_entries(path: str, manifest: str, count: int) -> dict[str, LayerEntry]:
    """Each path the image's last `count` layers hold (no leading `./` or trailing `/`),
    read from the shared registry's blobs: a later layer wins."""
    found = {}
    for layer in registry_json(path, manifest)["layers"][-count:]:
        blob = httpx.get(
            f"http://{SHARED_REGISTRY}/v2/{path}/blobs/{layer['digest']}", timeout=60
        ).raise_for_status()
        with tarfile.open(fileobj=io.BytesIO(blob.content), mode="r:*") as tar:
            for member in tar:
                name = member.name.removeprefix("./").rstrip("/")
                data = tar.extractfile(member) if member.isfile() else None
                content = data.read() if data is not None else None
                mode, mtime = member.mode & 0o7777, int(member.mtime)
                found[name] = LayerEntry(member.uid, mode, mtime, content)
    return found


def manifest_digest(address: str, path: str, tag: str, auth: tuple[str, str] | None = None) -> str:
    """What the registry itself says a tag resolves to (independent of buildkit's client)."""
    accept = ", ".join(MANIFEST_TYPES)
    response = httpx.get(
        f"http://{address}/v2/{path}/manifests/{tag}",
        headers={"Accept": accept},
        auth=auth,
        timeout=10,
    )
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def config_labels(address: str, path: str, tag: str) -> dict[str, str]:
    """The labels of the image a tag names (of its linux/amd64 image, for an index)."""
    accept = ", ".join(MANIFEST_TYPES)
    url = f"http://{address}/v2/{path}/manifests/"
    manifest = httpx.get(url + tag, headers={"Accept": accept}, timeout=10).json()
    if "manifests" in manifest:
        amd64 = next(
            m
            for m in manifest["manifests"]
            if (m.get("platform") or {}).get("architecture") == "amd64"
        )
        manifest = httpx.get(url + amd64["digest"], headers={"Accept": accept}, timeout=10).json()
    config = httpx.get(
        f"http://{address}/v2/{path}/blobs/{manifest['config']['digest']}", timeout=10
    ).json()
    labels: dict[str, str] = config["config"]["Labels"]
    return labels
