"""image: build the service's image for each target platform from the exact wheel of the
wheel stage, label it (OCI), tag it and smoke-test it, through the image backend the run
chose (backend.py): the engine (engine.py) or buildx (buildx.py, with its bake step).
What an image is made from is in inputs.py; what it hands to the push, in artifacts.py."""

from __future__ import annotations

from buildkit.cache.keys import Hasher
from buildkit.model import Outcome, Result, Step
from buildkit.stages.context import Context
from buildkit.stages.image import buildx
from buildkit.stages.image.backend import backend_of
from buildkit.stages.protocol import Stage


def run(step: Step, ctx: Context) -> Outcome:
    return backend_of(ctx.options).run(step, ctx)


def key_inputs(key: Hasher, step: Step, ctx: Context) -> bool:
    return backend_of(ctx.options).key_inputs(key, step, ctx)


def still_valid(step: Step, result: Result, ctx: Context) -> Result | None:
    return backend_of(ctx.options).still_valid(step, result, ctx)


STAGE = Stage(
    "image",
    run,
    needs=("wheel",),
    sibling_wheels=True,
    claude=True,
    key_inputs=key_inputs,
    still_valid=still_valid,
)
# buildx only: one step (target `images`) that bakes every image of the run.
BAKE = Stage("bake", buildx.bake)
