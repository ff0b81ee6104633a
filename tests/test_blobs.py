"""Pushing an engine image by digest through the registry API (buildkit.registry.blobs), against the
real engine and a registry process with htpasswd auth: what lands is the engine's image,
byte for byte where it matters, under no tag, and a second push compresses nothing."""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from buildkit.engine.client import Engine
from buildkit.proc import Cancelled
from buildkit.registry.blobs import LayerStore, push_by_digest
from buildkit.registry.client import RegistryClient
from buildkit.registry.credentials import Credentials
from tests.registries import private_registry

pytestmark = [pytest.mark.docker]
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture
def tiny_image(engine: Engine) -> Iterator[str]:
    """A two-layer image FROM scratch, built here (no base image, no network)."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        files = {
            "Dockerfile": b"FROM scratch\nCOPY a /a\nCOPY b /b\nLABEL test=blobs\n",
            "a": uuid.uuid4().bytes * 4096,  # unique content: a layer no other test has
            "b": b"second layer\n",
        }
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    tag = f"buildkit-test/blobs:{uuid.uuid4().hex[:8]}"
    image, _ = engine.client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    try:
        yield str(image.id)
    finally:
        engine.client.images.remove(tag, force=True)


def test_an_image_pushed_by_digest_is_the_engines_image_and_gets_no_tag(
    engine: Engine, tiny_image: str, tmp_path: Path
) -> None:
    store = LayerStore(tmp_path / "blobs")
    with private_registry(tmp_path / "reg", username="builder", password="s3cret") as registry:
        auth = ("builder", "s3cret")
        with RegistryClient(registry.address, Credentials(*auth)) as client:
            digest = push_by_digest(engine, client, "team/tiny", tiny_image, store)
            stored = {path: path.stat().st_mtime_ns for path in store.root.glob("*.tar.gz")}
            again = push_by_digest(engine, client, "team/tiny", tiny_image, store)
        assert again == digest  # deterministic
        assert {p: p.stat().st_mtime_ns for p in store.root.glob("*.tar.gz")} == stored

        base = f"http://{registry.address}/v2/team/tiny"
        manifest = httpx.get(
            f"{base}/manifests/{digest}", headers={"Accept": MANIFEST}, auth=auth, timeout=10
        )
        assert manifest.status_code == 200
        assert manifest.headers["Docker-Content-Digest"] == digest
        body = manifest.json()
        assert body["config"]["digest"] == tiny_image  # the smoke-tested image's id
        diff_ids = engine.image(tiny_image).diff_ids  # type: ignore[union-attr]
        assert len(body["layers"]) == len(diff_ids) == 2
        for layer, diff_id in zip(body["layers"], diff_ids, strict=True):
            blob = httpx.get(f"{base}/blobs/{layer['digest']}", auth=auth, timeout=30).content
            assert len(blob) == layer["size"]
            assert "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest() == diff_id
        tags = httpx.get(f"{base}/tags/list", auth=auth, timeout=10)
        assert tags.status_code == 404 or not tags.json().get("tags")


def test_a_stopped_push_raises_cancelled_and_leaves_no_partial_files(
    engine: Engine, tiny_image: str, tmp_path: Path
) -> None:
    """Fail-fast and Ctrl-C reach a push by digest between chunks: mid-export here, after
    a few reads of the engine's save stream."""
    store = LayerStore(tmp_path / "blobs")
    asked = itertools.count()
    with (
        private_registry(tmp_path / "reg") as registry,
        RegistryClient(registry.address) as client,
        pytest.raises(Cancelled, match="the push was stopped"),
    ):
        push_by_digest(engine, client, "team/tiny", tiny_image, store, stop=lambda: next(asked) > 3)
    assert next(asked) > 4  # it was asked, and stopped at the first "yes"
    temporary = [p.name for p in store.root.rglob(".*") if p.is_file()]
    assert temporary == []  # no spooled member, no half-written layer
    for layer in store.root.glob("*.tar.gz"):  # what was finished is whole and recorded
        record = json.loads(layer.with_suffix("").with_suffix(".json").read_text())
        assert record["digest"] == "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()
