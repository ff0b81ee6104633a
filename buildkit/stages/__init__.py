"""The stages, each declared by its own module as a `Stage` (protocol.py), registered here
in one place: what runs, what each step needs, what its key hashes, how a record is
re-checked. `step_key` hashes a step's inputs as its stage declares them."""

from __future__ import annotations

import sys

from buildkit import __version__
from buildkit.cache.keys import Hasher
from buildkit.model import Step
from buildkit.stages import fmt, image, lint, push, test, wheel, wheelhouse
from buildkit.stages.context import Context
from buildkit.stages.protocol import Stage

STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        test.STAGE,
        lint.STAGE,
        fmt.STAGE,
        wheel.STAGE,
        wheelhouse.STAGE,
        image.BAKE,
        image.STAGE,
        push.STAGE,
    )
}


def step_key(step: Step, ctx: Context) -> str | None:
    """The hash of everything the step's result depends on; None: it is never cached."""
    stage = STAGES[step.stage]
    if stage.key_inputs is None:
        return None
    key = Hasher()
    key.add("step", [step.stage, step.target, __version__, sys.version])
    return key.hexdigest() if stage.key_inputs(key, step, ctx) else None
