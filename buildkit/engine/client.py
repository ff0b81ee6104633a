"""The one seam to the Docker engine (docker SDK): build, tag, run, inspect, export.

Build output is streamed line by line to a callback; a failed build raises DockerError
carrying the failing step and its output (the engine answers HTTP 200 even when a build
fails, so errors are looked for in the stream itself). Images are pushed through the
registry API (buildkit.registry), not by the engine.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container

from buildkit.errors import DockerError

STEP_LINE = re.compile(r"^Step \d+/\d+ : ")
DEFAULT_HOST = "unix:///var/run/docker.sock"
START_HINT = (
    "start an engine (as root: `bash ci/prepare-machine.sh`, or `dockerd &`), point "
    "DOCKER_HOST at one, or pass --no-docker to skip images"
)


@dataclass(frozen=True)
class ImageInfo:
    id: str
    size: int
    architecture: str
    os: str
    labels: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    healthcheck: tuple[str, ...] = ()
    diff_ids: tuple[str, ...] = ()  # the layers' uncompressed digests, base first

    @property
    def platform(self) -> str:
        return f"{self.os}/{self.architecture}"


class BuildFailed(DockerError):
    def __init__(self, message: str, *, step: str, output: str) -> None:
        super().__init__(message)
        self.step = step
        self.output = output


CLASSIC_STORE = "classic"
PROBE_LABEL = "dev.buildkit.probe"  # on the containers buildkit creates only to ask
CONTAINERD_STORE = "containerd"


class Engine:
    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self._store = ""

    @classmethod
    def connect(cls, timeout: float = 600, host: str | None = None) -> Engine:
        """The engine at `host`, else at DOCKER_HOST (the docker CLI's rule)."""
        where = host or os.environ.get("DOCKER_HOST", DEFAULT_HOST)
        try:
            if host:
                client = docker.DockerClient(base_url=host, timeout=int(timeout))
            else:
                client = docker.from_env(timeout=int(timeout))
            client.ping()
        except (DockerException, ValueError, OSError) as exc:  # ValueError: a malformed host
            raise DockerError(
                f"no Docker engine answers at DOCKER_HOST={where}: {exc}", hint=START_HINT
            ) from exc
        return cls(client)

    @property
    def store(self) -> str:
        """The image store: `containerd` (the containerd snapshotter, the default of new
        installs: images are indexes holding per-platform variants, their id is the
        manifest's digest, `docker save` writes an OCI layout of compressed blobs) or
        `classic` (graph drivers such as overlay2: one image per platform, the id is the
        config's digest, `docker save` writes uncompressed layers)."""
        if not self._store:
            status = self.client.info().get("DriverStatus") or []
            snapshotter = any("containerd.snapshotter" in str(value) for _, value in status)
            self._store = CONTAINERD_STORE if snapshotter else CLASSIC_STORE
        return self._store

    def close(self) -> None:
        self.client.close()

    def platform(self) -> str:
        version = self.client.version()
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(version["Arch"], version["Arch"])
        return f"{version['Os']}/{arch}"

    # -- images -----------------------------------------------------------------------
    def image(self, ref: str) -> ImageInfo | None:
        try:
            attrs: dict[str, Any] = self.client.api.inspect_image(ref)  # type: ignore[no-untyped-call]
        except (ImageNotFound, NotFound):
            return None
        except APIError as exc:
            raise DockerError(f"the engine cannot look up image {ref!r}: {explain(exc)}") from exc
        config = attrs.get("Config") or {}
        health = (config.get("Healthcheck") or {}).get("Test") or []
        return ImageInfo(
            id=attrs["Id"],
            size=int(attrs.get("Size", 0)),
            architecture=attrs.get("Architecture", ""),
            os=attrs.get("Os", ""),
            labels=config.get("Labels") or {},
            tags=tuple(attrs.get("RepoTags") or ()),
            healthcheck=tuple(health),
            diff_ids=tuple((attrs.get("RootFS") or {}).get("Layers") or ()),
        )

    def save(self, image_id: str) -> Generator[bytes, None, None]:
        """`docker save` of one image, as a stream of tar chunks (close it to stop early)."""
        chunks: Generator[bytes, None, None] | None = None
        try:
            chunks = self.client.api.get_image(image_id, chunk_size=1 << 20)
            yield from chunks
        except (APIError, DockerException) as exc:
            raise DockerError(f"exporting image {image_id[:19]} failed: {explain(exc)}") from exc
        finally:
            if chunks is not None:
                chunks.close()  # releases the engine's HTTP response

    def load(self, archive: bytes) -> None:  # `docker load` (manifest.json, configs, layers)
        try:
            loading = self.client.api.load_image(archive, True)  # type: ignore[no-untyped-call]
            errors = [e for chunk in loading if (e := stream_error(chunk))]
        except (APIError, DockerException) as exc:
            errors = [explain(exc)]
        if errors:
            raise DockerError(f"loading an image into the engine failed: {errors[0]}")

    def remove_image(self, image_id: str, *, keep_parents: bool = False) -> None:
        """Remove an image; `keep_parents` keeps its untagged parents (the classic builder's
        intermediate images, which are its layer cache)."""
        with contextlib.suppress(APIError):  # gone already, or still tagged elsewhere: stays
            self.client.api.remove_image(image_id, noprune=keep_parents)

    def images_labelled(self, label: str, value: str) -> list[ImageInfo]:
        summaries = self.client.api.images(filters={"label": f"{label}={value}"})
        found = [self.image(str(summary["Id"])) for summary in summaries]
        return [info for info in found if info is not None]

    def pull(
        self, ref: str, platform: str | None = None, auth: Mapping[str, str] | None = None
    ) -> ImageInfo:
        """Pull `ref` (`name:tag` or `name@digest`); `auth` as docker's auth config, else the
        engine client's own (`docker login`)."""
        repository, at, digest = ref.partition("@")
        if at:
            tag = digest
        else:
            repository, _, tag = (
                ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
            )
        try:
            self.client.api.pull(
                repository,
                tag=tag or "latest",
                platform=platform,
                auth_config=dict(auth) if auth else None,
            )
        except (APIError, DockerException) as exc:
            raise DockerError(f"pulling {ref} failed: {explain(exc)}") from exc
        found = self.image(ref)
        if found is None:
            raise DockerError(f"{ref} was pulled but the engine does not list it")
        return found

    def build(
        self,
        *,
        context: Path,
        tag: str,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
        nocache: bool,
        platform: str | None,
        pull: bool,
        on_line: Callable[[str], None],
    ) -> str:
        """Build and return the image id; BuildFailed names the failing step."""
        step = ""
        step_output: list[str] = []
        image_id = ""
        try:
            stream: Iterable[dict[str, Any]] = self.client.api.build(
                path=str(context), dockerfile="Dockerfile", tag=tag, buildargs=dict(buildargs),
                labels=dict(labels), nocache=nocache, platform=platform, pull=pull, rm=True,
                forcerm=True, decode=True,
            )  # fmt: skip
            for chunk in stream:
                message = stream_error(chunk)
                if message is not None:
                    raise BuildFailed(
                        f"image build failed at {step or 'the start'}: {message.strip()}",
                        step=step,
                        output="\n".join([*step_output[-40:], message.strip()]),
                    )
                for line in str(chunk.get("stream", "")).splitlines():
                    if STEP_LINE.match(line):
                        step, step_output = line, []
                    elif line.strip():
                        step_output.append(line)
                    on_line(line)
                if chunk.get("status"):
                    on_line(str(chunk["status"]))
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = str(aux["ID"])
        except APIError as exc:
            raise DockerError(f"the engine refused the build: {explain(exc)}") from exc
        if not image_id:
            found = self.image(tag)
            if found is None:
                raise DockerError(f"the build of {tag} ended without an image")
            image_id = found.id
        return image_id

    def tag(self, image_id: str, ref: str) -> None:
        repository, _, tag = ref.rpartition(":")
        if not self.client.api.tag(image_id, repository, tag, force=True):
            raise DockerError(f"tagging {image_id} as {ref} failed")

    def check_emulation(self, platform: str, image: str, timeout: float = 120) -> None:
        """Run `image` as `platform` once; raise with the fix when it cannot execute."""
        expected = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}.get(platform, "")
        probe = ["python3", "-c", "import platform; print(platform.machine())"]
        output, code = "", -1
        try:
            container = self.client.containers.run(
                image, command=probe, entrypoint=[], detach=True, platform=platform
            )
        except (APIError, DockerException) as exc:
            output = explain(exc)
        else:
            try:
                code = int(container.wait(timeout=timeout)["StatusCode"])
                output = bytes(container.logs()).decode(errors="replace").strip()
            except (APIError, DockerException, OSError) as exc:
                output = f"no answer within {timeout:.0f}s ({exc})"
            finally:
                self.remove(container)
        if code != 0 or (expected and output.splitlines()[-1:] != [expected]):
            raise DockerError(
                f"this engine cannot run {platform} containers: {output or f'exit {code}'}",
                hint="enable QEMU emulation: `docker run --privileged --rm tonistiigi/binfmt "
                "--install all` (with internet), or `bash ci/prepare-machine.sh` here",
            )

    # -- containers -------------------------------------------------------------------
    def run(
        self,
        image: str,
        *,
        command: list[str] | None = None,
        ports: Mapping[str, tuple[str, int | None]] | None = None,
        environment: Mapping[str, str] | None = None,
        platform: str | None = None,
    ) -> Container:
        try:
            # (address, None) publishes on a random port; docker-py accepts it, its stubs do not.
            container: Container = self.client.containers.run(  # type: ignore[call-overload]
                image,
                command=command,
                detach=True,
                ports=dict(ports or {}),
                environment=dict(environment or {}),
                platform=platform,
            )
        except (APIError, DockerException) as exc:
            raise DockerError(f"starting a container of {image} failed: {explain(exc)}") from exc
        return container

    def remove(self, container: Container) -> None:
        with contextlib.suppress(NotFound):
            container.remove(force=True, v=True)


def stream_error(chunk: dict[str, Any]) -> str | None:
    """The error a build or push stream reports in one of its chunks, if any."""
    if "error" not in chunk and "errorDetail" not in chunk:
        return None
    return str((chunk.get("errorDetail") or {}).get("message") or chunk.get("error"))


def explain(exc: Exception) -> str:
    if isinstance(exc, APIError) and exc.explanation:
        return str(exc.explanation)
    return str(exc)
