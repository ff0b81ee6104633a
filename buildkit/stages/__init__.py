"""One module per stage; each exposes `run(service, ctx) -> Outcome`."""

from __future__ import annotations

from collections.abc import Callable

from buildkit.config import Service
from buildkit.model import Result
from buildkit.stages import fmt, image, lint, push, test, wheel, wheelhouse
from buildkit.stages.context import Context, StageRunner

RUNNERS: dict[str, StageRunner] = {
    "test": test.run,
    "lint": lint.run,
    "fmt": fmt.run,
    "wheel": wheel.run,
    "wheelhouse": wheelhouse.run,
    "image": image.run,
    "push": push.run,
}

# Checks that a recorded success still stands (its artifacts exist) before it is reused.
VALIDATORS: dict[str, Callable[[Service, Result, Context], Result | None]] = {
    "wheel": wheel.still_valid,
    "image": image.still_valid,
    "push": push.still_valid,
}
