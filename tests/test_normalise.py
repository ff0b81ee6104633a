"""The classic builder's config, given the commit's time: what two builds of one commit
disagreed on (measured: `created`, the new history entries' times, `container`,
`container_config`, `config.Image`) is set or dropped; the base image's older history and
everything else stays as the engine wrote it. (Loading it into a real engine is covered by
tests/test_reproducible.py.)"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

from buildkit.engine.normalise import epoch_time, load_archive, normalised_config
from buildkit.registry.client import digest_of

EPOCH = 1_700_000_000  # 2023-11-14T22:13:20Z


def classic_config(build_time: str, container: str) -> bytes:
    config: dict[str, Any] = {
        "architecture": "amd64",
        "config": {"User": "10001:10001", "Env": ["LANG=C.UTF-8"], "Image": f"sha256:{container}"},
        "container": container,
        "container_config": {"Hostname": container[:12], "Image": f"sha256:{container}"},
        "created": build_time,
        "docker_version": "26.1.5+dfsg1",
        "history": [
            {"created": "2023-01-02T03:04:05.123456789Z", "created_by": "ADD rootfs.tar /"},
            {"created": build_time, "created_by": "COPY linux-amd64/ /"},
            {"created": build_time, "created_by": "USER 10001:10001", "empty_layer": True},
        ],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:aa", "sha256:bb"]},
    }
    return json.dumps(config).encode()


def test_two_builds_of_one_commit_get_the_same_config() -> None:
    first = normalised_config(classic_config("2026-12-04T19:59:52.4338Z", "ea04f5db"), EPOCH)
    second = normalised_config(classic_config("2026-12-04T19:59:55.0320Z", "3acfaaf6"), EPOCH)
    assert first == second
    data = json.loads(first)
    assert data["created"] == epoch_time(EPOCH) == "2023-11-14T22:13:20Z"
    assert [h["created"] for h in data["history"]] == [
        "2023-01-02T03:04:05.123456789Z",  # the base's, earlier than the commit: kept
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:20Z",
    ]
    assert not {"container", "container_config", "docker_version"} & data.keys()
    assert data["config"] == {"User": "10001:10001", "Env": ["LANG=C.UTF-8"]}
    assert data["rootfs"]["diff_ids"] == ["sha256:aa", "sha256:bb"]  # the same layers


def test_a_normalised_config_is_left_as_it_is() -> None:
    once = normalised_config(classic_config("2026-12-04T19:59:52Z", "ea04f5db"), EPOCH)
    assert normalised_config(once, EPOCH) == once


def test_the_load_archive_names_the_config_by_its_digest_and_every_layer() -> None:
    config = normalised_config(classic_config("2026-12-04T19:59:52Z", "ea04f5db"), EPOCH)
    archive = load_archive(config, ("sha256:aa", "sha256:bb"), "localhost:5000/x/alpha:v1")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        stored = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
    assert stored == config
    assert manifest[0]["Config"] == f"{digest_of(config).removeprefix('sha256:')}.json"
    assert manifest[0]["RepoTags"] == ["localhost:5000/x/alpha:v1"]
    assert manifest[0]["Layers"] == ["aa/layer.tar", "bb/layer.tar"]
    assert sorted(names) == sorted([manifest[0]["Config"], "manifest.json"])  # no layer data
