"""The image backend: the one object that builds a run's images, chosen once per run,
before the plan (the plan depends on it: buildx bakes every image in one step first).

    engine  the docker SDK: one build per platform, per image step
    buildx  one `docker buildx bake` step for every image, then a smoke-test step each
"""

from __future__ import annotations

from typing import Protocol

from buildkit.cache.keys import Hasher
from buildkit.engine import buildx
from buildkit.errors import ConfigError, ToolMissingError
from buildkit.model import Outcome, Result, Step
from buildkit.options import Options
from buildkit.proc import Runner
from buildkit.stages.context import Context
from buildkit.stages.image.buildx import BuildxBackend
from buildkit.stages.image.engine import EngineBackend


class ImageBackend(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def bakes(self) -> bool:
        """One `images:bake` step builds every image before the image steps."""
        ...

    def run(self, step: Step, ctx: Context) -> Outcome: ...
    def key_inputs(self, key: Hasher, step: Step, ctx: Context) -> bool: ...
    def still_valid(self, step: Step, result: Result, ctx: Context) -> Result | None: ...


BACKENDS: dict[str, ImageBackend] = {"engine": EngineBackend(), "buildx": BuildxBackend()}


def backend_of(options: Options) -> ImageBackend:
    """The backend this run chose (options.image_backend is resolved by `choose`)."""
    return BACKENDS[options.image_backend]


def choose(options: Options, runner: Runner, *, cache: bool = False) -> tuple[str, str]:
    """The backend for `options.image_backend` (auto, buildx or engine), and a note when
    `auto` did not take buildx although it is installed. An explicit choice stands, unless
    it cannot work here: then it fails before anything is built. A named builder is an
    explicit choice of buildx: when it does not answer, `auto` fails too instead of quietly
    building elsewhere. `cache` is the project's `buildx_cache`."""
    if options.image_backend == "engine":
        return "engine", ""
    builder = buildx.inspect_builder(runner, options.builder)
    if builder is None and options.builder:  # a named builder asks for buildx, even under auto
        raise ToolMissingError(
            f"buildx builder {options.builder!r} (--builder, or [tool.buildkit] builder) does "
            f"not answer: `docker buildx inspect --builder {options.builder}` failed",
            hint="`docker buildx ls` lists the builders there are; create this one "
            "(`docker buildx create --name ...`), name another, or leave the builder out to "
            "use buildx's current one",
        )
    if options.image_backend == "buildx":
        if builder is None:
            raise ToolMissingError(
                "docker buildx is not available (`docker buildx inspect` failed)",
                hint=buildx.BUILDX_MISSING_HINT,
            )
        refused = buildx.cache_export_refused(builder, options.push, cache)
        if refused:
            raise ConfigError(
                f"--image-backend buildx with --push: {refused}",
                hint="set `buildx_cache = false` in [tool.buildkit], use --image-backend "
                "engine (or auto, which takes it here), turn on the engine's containerd "
                "image store, or pass --builder with a docker-container, remote or "
                "kubernetes builder",
            )
        return "buildx", ""
    platforms = len(options.platforms) or 1  # none given: the engine's own
    backend, why = buildx.auto_backend(builder, platforms, options.push, cache)
    return backend, f"--image-backend auto: the engine backend ({why})" if why and builder else ""
